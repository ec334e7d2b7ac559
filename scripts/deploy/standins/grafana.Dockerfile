# Stand-in for grafana/grafana (not packaged by Debian): a small server that reads Grafana's
# provisioning directory as Grafana does at start-up (data sources and dashboard providers, then the
# dashboards' JSON), refuses to start when any of it is missing or malformed, and serves /api/health
# and the provisioned dashboards at /api/dashboards/uid/<uid>.
ARG BASE
FROM ${BASE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-yaml wget \
    && rm -rf /var/lib/apt/lists/*
COPY grafana_standin.py /usr/local/bin/grafana_standin.py
USER 472:0
EXPOSE 3000
CMD ["python3", "/usr/local/bin/grafana_standin.py"]
