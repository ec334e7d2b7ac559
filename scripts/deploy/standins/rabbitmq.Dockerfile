# Stand-in for rabbitmq:3-management: Debian's RabbitMQ with the management plugin.
ARG BASE
FROM ${BASE}
# The user first, with the upstream image's UID/GID (999), so that the package adopts it.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 rabbitmq \
    && useradd --system --uid 999 --gid 999 --home-dir /var/lib/rabbitmq rabbitmq \
    && apt-get update \
    && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && rabbitmq-plugins enable --offline rabbitmq_management \
    && printf 'listeners.tcp.default = 5672\nmanagement.tcp.port = 15672\nloopback_users = none\n' \
       > /etc/rabbitmq/rabbitmq.conf \
    && mkdir -p /var/lib/rabbitmq && chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /etc/rabbitmq
ENV RABBITMQ_MNESIA_BASE=/var/lib/rabbitmq/mnesia RABBITMQ_LOG_BASE=/var/lib/rabbitmq/log RABBITMQ_LOGS=-
USER 999:999
EXPOSE 5672 15672
CMD ["rabbitmq-server"]
