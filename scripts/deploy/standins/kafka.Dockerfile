# Stand-in for apache/kafka (KRaft, single node): the Kafka-protocol test broker Tansu (the one the
# test suite uses), advertising itself as kafka:9092 on the compose network.
ARG BASE
FROM ${BASE}
COPY tansu /usr/local/bin/tansu
USER 1000:1000
EXPOSE 9092
CMD ["/usr/local/bin/tansu", "broker", "--listener-url", "tcp://0.0.0.0:9092", "--advertised-listener-url", "tcp://kafka:9092"]
