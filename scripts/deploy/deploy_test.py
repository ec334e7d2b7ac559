"""The compose stack and the images, run for real: `docker-compose up` of docker-compose.yml (upstream
images replaced by the stand-ins of compose.standins.yml), once over RabbitMQ, once with the kafka
profile and once over SNS + SQS and DynamoDB with the aws profile (moto). Through the host ports: a location and
an event, bookings until 409, SeatsAvailable reaching
0 on the event service, both services `up` in Prometheus, the dashboard in Grafana; then a SIGKILL of
the booking service, which compose restarts with every booking still there; over SNS + SQS, a
restart of the AWS API, which keeps nothing, after which both services are ready again on tables
created anew and a new event's bookings still propagate;
then `down -v`. Each
image also runs under the constraints of its rendered Deployment (UID, read-only root, no
capabilities, memory limit, the ConfigMap's and Secret's environment), becomes ready on its probe
path, answers /version with the labels of its image, and stops within its grace period.

Usage: deploy_test.py TAG   (the images myevents/{event,booking}-service:TAG must exist)"""

import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from checks import (  # noqa: E402
    SERVICES, Tally, deployment_environment, eventually, objects, render, request, run, secret_files,
)

TAG = sys.argv[1]
PROJECT = "myeventsdeploytest"
FILES = ["-f", "docker-compose.yml", "-f", "scripts/deploy/compose.standins.yml"]
EVENT = "http://127.0.0.1:8181"
BOOKING = "http://127.0.0.1:8282"
CAPACITY = 6
# The store of each flow: on AWS's services, DynamoDB.
STORES = {"rabbitmq": "mongodb", "kafka": "mongodb", "sqs": "dynamodb"}


def compose(*args, broker="rabbitmq", timeout=600):
    profile = {"kafka": ["--profile", "kafka"], "sqs": ["--profile", "aws"]}.get(broker, [])
    env = {"COMPOSE_PROJECT_NAME": PROJECT, "MYEVENTS_TAG": TAG, "BROKER_KIND": broker,
           "STORE_KIND": STORES[broker]}
    return run("docker-compose", *FILES, *profile, *args, env=env, timeout=timeout)


def container(service):
    return compose("ps", "-q", service).strip()


def inspect(container_id, template):
    return run("docker", "inspect", "-f", template, container_id).strip()


def ready(url):
    return request("GET", f"{url}/readyz")[0] == 200


class Flow:
    """One `up` of the stack, over one broker."""

    def __init__(self, broker):
        self.broker = broker
        self.event_id = None
        self.booked = {}  # user -> booking id

    def up(self):
        compose("down", "-v", "--remove-orphans", broker=self.broker)
        compose("up", "-d", "--no-build", broker=self.broker)
        eventually("the event service ready", lambda: ready(EVENT), 240)
        eventually("the booking service ready", lambda: ready(BOOKING), 240)
        for service in SERVICES:
            env = inspect(container(service), "{{json .Config.Env}}")
            assert f'"BROKER_KIND={self.broker}"' in env, f"{service} is not on {self.broker}: {env}"
            store = STORES[self.broker]
            assert f'"STORE_KIND={store}"' in env, f"{service} is not on {store}: {env}"
        for service in SERVICES + ["mongodb", "rabbitmq", "prometheus", "grafana"] + (
                {"kafka": ["kafka"], "sqs": ["aws"]}.get(self.broker, [])):
            eventually(f"{service} healthy",
                       lambda s=service: inspect(container(s), "{{.State.Health.Status}}") == "healthy", 240)

    def book_until_sold_out(self, suffix=""):
        status, _, location = request("POST", f"{EVENT}/locations", {
            "Name": f"Compose Hall{suffix}", "Address": "1 Main St", "Country": "DE", "OpenTime": 8,
            "CloseTime": 22, "Halls": [{"name": "A", "location": "1st floor", "capacity": CAPACITY}]})
        assert status == 201, (status, location)
        status, _, event = request("POST", f"{EVENT}/events", {
            "Name": f"compose {self.broker}{suffix}", "Duration": 120, "StartDate": 1768000000,
            "EndDate": 1768007200, "Location": {"ID": location["ID"]}})
        assert status == 201, (status, event)
        self.event_id = event["ID"]
        url = f"{BOOKING}/events/{self.event_id}/bookings"

        def book(user):
            # The book's frontend: no Content-Type, a string body.
            return request("POST", url, b'{"seats":1}', {"X-User-Id": user})

        # The booking service learns of the event from eventCreated over the broker.
        first = eventually("the booking service knows the event",
                           lambda: (lambda r: r if r[0] != 404 else None)(book("user-0")), 60)
        assert first[0] == 201, first
        self.booked["user-0"] = first[2]["ID"]
        for i in range(1, CAPACITY + 3):
            status, _, body = book(f"user-{i}")
            if status == 409:
                assert body["status"] == 409 and "seats" in body["detail"], body
                break
            assert status == 201, (status, body)
            self.booked[f"user-{i}"] = body["ID"]
        assert len(self.booked) == CAPACITY, f"{len(self.booked)} bookings for {CAPACITY} seats"

    def mongodb_is_a_replica_set(self):
        """MongoDB runs as the manifests' single-node replica set, its member named as the services
        reach it. The stand-in is initiated from its flags (mongo_standin.py); on mongo:7 the health
        check's rs.initiate() does it, which this machine cannot run (no image registry)."""
        hello = run("docker", "exec", container("mongodb"), "/opt/secantus/bin/python", "-c",
                    "import json, pymongo; h = pymongo.MongoClient('mongodb://mongodb:27017/?replicaSet=rs0',"
                    " serverSelectionTimeoutMS=5000).admin.command('hello');"
                    " print(json.dumps({k: h.get(k) for k in ('setName', 'hosts', 'isWritablePrimary')}))")
        assert json.loads(hello) == {"setName": "rs0", "hosts": ["mongodb:27017"], "isWritablePrimary": True}, hello
        print("    note: the stand-in's replica set is initiated from its flags; mongo:7's by the compose "
              "health check's rs.initiate(), not run here", flush=True)

    def seats_propagate(self):
        def seats():
            status, _, event = request("GET", f"{EVENT}/events/{self.event_id}")
            return status == 200 and event.get("SeatsAvailable") == 0
        eventually("SeatsAvailable 0 on the event service", seats, 60)

    def prometheus_scrapes(self):
        def both_up():
            _, _, body = request("GET", "http://127.0.0.1:9090/api/v1/targets")
            health = {t["labels"]["job"]: t["health"] for t in body["data"]["activeTargets"]}
            return health if health == {s: "up" for s in SERVICES} else None
        eventually("both services up in Prometheus", both_up, 60)
        _, _, rules = request("GET", "http://127.0.0.1:9090/api/v1/rules")
        names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert "MyEventsHighErrorRate" in names, names

    def monitoring_ui(self):
        status, _, body = request("GET", "http://127.0.0.1:3000/api/dashboards/uid/myevents")
        assert status == 200 and body["dashboard"]["title"] == "MyEvents", (status, body)
        status, _, sources = request("GET", "http://127.0.0.1:3000/api/datasources")
        assert status == 200 and sources[0]["url"] == "http://prometheus:9090", sources
        status, _, overview = request("GET", "http://127.0.0.1:15672/api/overview",
                                      auth=("myevents", "myevents"))
        assert status == 200 and "rabbitmq_version" in overview, (status, overview)

    def survives_sigkill(self):
        booking = container("booking-service")
        restarts = int(inspect(booking, "{{.RestartCount}}"))
        pid = int(inspect(booking, "{{.State.Pid}}"))
        os.kill(pid, signal.SIGKILL)  # a crash, not a stop: the restart policy applies
        eventually("compose restarts the booking service",
                   lambda: int(inspect(booking, "{{.RestartCount}}")) > restarts, 60)
        eventually("the restarted booking service ready", lambda: ready(BOOKING), 120)
        for user, booking_id in self.booked.items():
            status, _, bookings = request("GET", f"{BOOKING}/users/{user}/bookings", headers={"X-User-Id": user})
            assert status == 200 and [b["ID"] for b in bookings] == [booking_id], (user, status, bookings)
        status, _, body = request("POST", f"{BOOKING}/events/{self.event_id}/bookings", b'{"seats":1}',
                                  {"X-User-Id": "late"})
        assert status == 409, (status, body)

    def survives_an_aws_restart(self):
        """compose's local AWS API keeps nothing: restarted, it has no topic, queue, subscription or
        table. Both services find their tables gone at their next readiness check (or call), are
        unready until they have created them again, find their topic and queues gone at their next
        publish or receive and declare them again; a new event still reaches the booking service,
        whose booking reaches the event service."""
        compose("restart", "aws", broker=self.broker)
        eventually("aws healthy again",
                   lambda: inspect(container("aws"), "{{.State.Health.Status}}") == "healthy", 120)
        eventually("the event service ready again", lambda: ready(EVENT), 120)
        eventually("the booking service ready again", lambda: ready(BOOKING), 120)
        self.booked = {}
        self.book_until_sold_out(" after the restart")
        self.seats_propagate()

    def down(self):
        compose("down", "-v", "--remove-orphans", broker=self.broker)
        left = run("docker", "volume", "ls", "-q", "--filter", f"name={PROJECT}_").split()
        assert not left, f"volumes left after down -v: {left}"


def memory_flag(quantity):
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    return quantity[:-2] + units[quantity[-2:]] if quantity[-2:] in units else quantity


def runs_as_its_deployment_declares(docs, service):
    """The image under its Deployment's constraints, on the compose network, with its environment."""
    deployment = objects(docs, "Deployment")[service]
    pod = deployment["spec"]["template"]["spec"]
    main = pod["containers"][0]
    context = {**pod["securityContext"], **main["securityContext"]}
    env = deployment_environment(docs, deployment)
    http_port = {p["name"]: p["containerPort"] for p in main["ports"]}[main["readinessProbe"]["httpGet"]["port"]]
    image = f"myevents/{service}:{TAG}"
    name = f"{PROJECT}-{service}-manifest-{uuid.uuid4().hex[:6]}"
    args = ["docker", "run", "-d", "--name", name, "--network", f"{PROJECT}_default",
            "--user", f"{context['runAsUser']}:{context['runAsGroup']}",
            "--memory", memory_flag(main["resources"]["limits"]["memory"]),
            "--cpus", str(main["resources"]["limits"]["cpu"]),
            "--security-opt", "no-new-privileges", "-p", f"127.0.0.1::{http_port}"]
    if context["readOnlyRootFilesystem"]:
        args.append("--read-only")
    args += [f"--cap-drop={c}" for c in context["capabilities"]["drop"]]
    # The manifest's environment as it is: its host names (mongodb, rabbitmq) are compose's too, and
    # this copy joins the compose service's queue like one more replica.
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    # The mounted Secrets, as files readable by the container's user.
    mounts = tempfile.mkdtemp(prefix="myevents-secrets-")
    for n, (path, data) in enumerate(secret_files(docs, deployment).items()):
        directory = os.path.join(mounts, str(n))
        os.makedirs(directory)
        for key, content in data.items():
            with open(os.path.join(directory, key), "w", encoding="utf-8") as f:
                f.write(content)
            os.chmod(os.path.join(directory, key), 0o444)
        os.chmod(directory, 0o755)
        args += ["-v", f"{directory}:{path}:ro"]
    os.chmod(mounts, 0o755)
    run(*args, image)
    try:
        host_port = run("docker", "port", name, str(http_port)).split(":")[-1].strip()
        base = f"http://127.0.0.1:{host_port}"
        probe = main["readinessProbe"]["httpGet"]["path"]
        eventually(f"{service} ready on {probe} under its Deployment's constraints",
                   lambda: request("GET", base + probe)[0] == 200, 60)
        user = inspect(name, "{{.Config.User}}")
        assert user == f"{context['runAsUser']}:{context['runAsGroup']}", user
        status, _, version = request("GET", f"{base}/version")
        labels = {k: inspect(image, f'{{{{ index .Config.Labels "org.opencontainers.image.{k}" }}}}')
                  for k in ("version", "revision")}
        assert status == 200 and version["service"] == service, (status, version)
        assert version["version"] == labels["version"] and version["commit"] == labels["revision"], (version, labels)
        grace = pod["terminationGracePeriodSeconds"]
        started = time.monotonic()
        run("docker", "stop", "-t", str(grace), name, timeout=grace + 30)
        took = time.monotonic() - started
        code = inspect(name, "{{.State.ExitCode}}")
        assert code == "0" and took < grace, f"exit {code} after {took:.1f} s (grace {grace} s)"
        print(f"    {service}: ready under UID {context['runAsUser']}, read-only root, no capabilities, "
              f"{main['resources']['limits']['memory']}; SIGTERM to exit 0 in {took:.1f} s", flush=True)
    finally:
        logs = run("docker", "logs", name, check=False)
        run("docker", "rm", "-f", name, check=False)
        shutil.rmtree(mounts, ignore_errors=True)
    assert "panicked" not in logs, logs


def main():
    tally = Tally("deploy stack")
    for service in SERVICES:
        size = int(run("docker", "image", "inspect", "-f", "{{.Size}}", f"myevents/{service}:{TAG}"))
        print(f"    image myevents/{service}:{TAG}: {size / 1e6:.1f} MB", flush=True)
    docs = render("rabbitmq")
    for broker in ("rabbitmq", "kafka", "sqs"):
        flow = Flow(broker)
        try:
            if not tally.check(f"[{broker}] docker-compose up: every container healthy", flow.up):
                continue
            tally.check(f"[{broker}] MongoDB is the replica set rs0, member mongodb:27017", flow.mongodb_is_a_replica_set)
            if tally.check(f"[{broker}] a location, an event, bookings until 409", flow.book_until_sold_out):
                tally.check(f"[{broker}] SeatsAvailable reaches 0 on the event service", flow.seats_propagate)
            tally.check(f"[{broker}] Prometheus scrapes both services and loaded the alert rules", flow.prometheus_scrapes)
            tally.check(f"[{broker}] Grafana has the dashboard; RabbitMQ's management API answers", flow.monitoring_ui)
            if flow.event_id:
                tally.check(f"[{broker}] SIGKILL of the booking service: restarted, every booking still there",
                            flow.survives_sigkill)
            if broker == "sqs":
                tally.check("[sqs] the AWS API restarted empty: tables and topology made again, bookings propagate",
                            flow.survives_an_aws_restart)
            if broker == "rabbitmq":
                for service in SERVICES:
                    tally.check(f"{service} image runs as its Deployment declares and stops within its grace period",
                                runs_as_its_deployment_declares, docs, service)
        finally:
            if tally.failed:
                print(compose("logs", "--no-color", "--tail", "40", broker=broker), flush=True)
            tally.check(f"[{broker}] docker-compose down -v removes containers and volumes", flow.down)
    tally.finish()


if __name__ == "__main__":
    main()
