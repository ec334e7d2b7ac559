# Stand-in for mongo:7: the MongoDB-wire test server SecantusDB (the one the test suite uses), storing
# under /data/db like the upstream image, and standalone like it (no replica set whose member address
# 0.0.0.0 other containers would be sent to).
ARG BASE
FROM ${BASE}
ARG SECANTUS_VERSION
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/secantus \
    && /opt/secantus/bin/pip install --no-cache-dir "SecantusDB==${SECANTUS_VERSION}" \
    && mkdir -p /data/db && chown 999:999 /data/db
USER 999:999
EXPOSE 27017
CMD ["/opt/secantus/bin/secantusd-py", "--host", "0.0.0.0", "--port", "27017", "--storage-path", "/data/db", "--log-level", "WARNING", "--standalone"]
