# Stand-in for mongo:7: the MongoDB-wire test server SecantusDB (the one the test suite uses), storing
# under /data/db like the upstream image, and taking mongod's flags (--replSet, --bind_ip_all, --port,
# --dbpath) through mongo_standin.py, so that the compose file's and the manifests' arguments reach
# it as they reach mongod.
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
COPY mongo_standin.py /opt/mongo_standin.py
USER 999:999
EXPOSE 27017
ENTRYPOINT ["/opt/secantus/bin/python", "/opt/mongo_standin.py"]
CMD ["--bind_ip_all"]
