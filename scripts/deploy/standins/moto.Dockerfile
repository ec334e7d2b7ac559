# Stand-in for motoserver/moto: moto in server mode (the AWS-API test server the suite uses for SNS and
# SQS), from PyPI, listening on 5000 like the upstream image.
ARG BASE
FROM ${BASE}
ARG MOTO_VERSION
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/moto \
    && /opt/moto/bin/pip install --no-cache-dir "moto[server]==${MOTO_VERSION}"
USER 65532:65532
EXPOSE 5000
ENTRYPOINT ["/opt/moto/bin/moto_server", "-H", "0.0.0.0", "-p", "5000"]
