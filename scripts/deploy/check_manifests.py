"""Static checks of what ships for deployment: every Kubernetes overlay renders and validates strictly,
passes the policy scanner, agrees with the services (variables, probe paths, ports, grace period);
the compose file parses and sets only variables the services read; the Dockerfiles pass hadolint.

Run by scripts/deploy/test.sh with the tools of its virtual environment on PATH."""

import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from checks import (  # noqa: E402
    EXIT_AFTER_SHUTDOWN_SECONDS, MANAGED, OVERLAYS, PRODUCTION, ROOT, SERVICES, Tally, compose_file,
    deployment_environment, documented_variables, example_variables, objects, port_of, render, rendered_text, secret_files,
    routes_served, run, service_settings, variables_read,
)

KUBERNETES_VERSION = "1.37.0"
rendered = {}


def renders(overlay):
    rendered[overlay] = render(overlay)
    kinds = {d["kind"] for d in rendered[overlay]}
    for kind in ("Deployment", "StatefulSet", "Service", "HorizontalPodAutoscaler",
                 "PodDisruptionBudget", "NetworkPolicy", "Ingress", "ConfigMap", "Secret"):
        if kind == "StatefulSet" and overlay in MANAGED:
            continue
        assert kind in kinds, f"{overlay}: no {kind}"


def validates(overlay):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(rendered_text(overlay))
    try:
        out = run("kubernetes-validate", "--strict", "--quiet", "-k", KUBERNETES_VERSION, f.name)
        print(out.strip())
    finally:
        os.unlink(f.name)


def scanned():
    with tempfile.TemporaryDirectory() as directory:
        for overlay in OVERLAYS:
            with open(os.path.join(directory, f"{overlay}.yaml"), "w", encoding="utf-8") as f:
                f.write(rendered_text(overlay))
        out = run("checkov", "-d", directory, "--framework", "kubernetes", "--compact", "--quiet",
                  "--skip-download", check=False)
        print(out.strip())
        assert "Failed checks: 0" in out, "checkov reports failures not skipped with a reason"


def dockerfiles_lint():
    files = ["Dockerfile"] + sorted(
        os.path.join("scripts/deploy/standins", f)
        for f in os.listdir(os.path.join(ROOT, "scripts/deploy/standins")) if f.endswith(".Dockerfile"))
    run("hadolint", *files)


def compose_parses():
    run("docker-compose", "-f", "docker-compose.yml", "config", "-q")
    run("docker-compose", "-f", "docker-compose.yml", "--profile", "kafka", "config", "-q")
    run("docker-compose", "-f", "docker-compose.yml", "--profile", "aws", "config", "-q")
    run("docker-compose", "-f", "docker-compose.yml", "-f", "scripts/deploy/compose.standins.yml",
        "--profile", "kafka", "--profile", "aws", "config", "-q")


def variables_are_read():
    read = variables_read()
    for listing, listed in (("docs/configuration.md's table", documented_variables()),
                            (".env.example", example_variables())):
        assert listed == read, (
            f"{listing} and the sources disagree: only listed {sorted(listed - read)}, "
            f"only read {sorted(read - listed)}")
    compose = compose_file()
    for service in SERVICES:
        unknown = set(compose["services"][service]["environment"]) - read
        assert not unknown, f"docker-compose.yml sets {sorted(unknown)} for {service}, which no service reads"
    for overlay in OVERLAYS:
        for name, deployment in objects(rendered[overlay], "Deployment").items():
            unknown = set(deployment_environment(rendered[overlay], deployment)) - read
            assert not unknown, f"{overlay}: {name} gets {sorted(unknown)}, which no service reads"


def probes_and_ports_match(overlay):
    docs = rendered[overlay]
    services = objects(docs, "Service")
    for name in SERVICES:
        deployment = objects(docs, "Deployment")[name]
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        env = deployment_environment(docs, deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == port_of(env["LISTEN_URL"]), f"{name}: http port vs LISTEN_URL"
        assert ports["metrics"] == port_of(env["METRICS_LISTEN_URL"]), f"{name}: metrics port vs METRICS_LISTEN_URL"
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == ports["metrics"], f"{name}: scrape port"
        served = routes_served(name)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["path"] in served, f"{name}: {probe} path {get['path']} is not served ({sorted(served)})"
            assert get["port"] in ports, f"{name}: {probe} port {get['port']}"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        service_ports = {p["name"]: p for p in services[name]["spec"]["ports"]}
        for port_name, port in service_ports.items():
            assert port["targetPort"] in ports, f"{name}: Service port {port_name} targets nothing"
            assert port["port"] == ports[port["targetPort"]], f"{name}: Service port {port_name}"
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        needed = int(env["SHUTDOWN_TIMEOUT"]) + EXIT_AFTER_SHUTDOWN_SECONDS
        assert grace >= needed, f"{name}: terminationGracePeriodSeconds {grace} < {needed}"
        assert int(env["SHUTDOWN_DELAY"]) < int(env["SHUTDOWN_TIMEOUT"]) // 2, (
            f"{name}: SHUTDOWN_DELAY leaves the requests too little of SHUTDOWN_TIMEOUT"
        )
        assert deployment["spec"]["replicas"] >= 2, f"{name}: fewer than 2 replicas"
        hpa = objects(docs, "HorizontalPodAutoscaler")[name]
        assert hpa["spec"]["scaleTargetRef"]["name"] == name and hpa["spec"]["minReplicas"] >= 2
        pdb = objects(docs, "PodDisruptionBudget")[name]
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def security_contexts(overlay):
    for kind in ("Deployment", "StatefulSet"):
        for name, workload in objects(rendered[overlay], kind).items():
            pod = workload["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
            assert pod["automountServiceAccountToken"] is False, name
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, name
                assert context["capabilities"]["drop"] == ["ALL"], name
                assert "limits" in container["resources"] and "requests" in container["resources"], name
                if kind == "Deployment":
                    assert context["readOnlyRootFilesystem"] is True, name


def credentials_are_files(overlay):
    """No credential in a service's environment (`kubectl describe` would show it): the Secret is
    mounted, and each <NAME>_FILE variable names one of its files."""
    docs = rendered[overlay]
    for name in SERVICES:
        deployment = objects(docs, "Deployment")[name]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert not any("secretRef" in source for source in container.get("envFrom", [])), f"{name}: envFrom a Secret"
        assert not any("valueFrom" in item for item in container.get("env", [])), f"{name}: env from a Secret"
        files = {f"{path}/{key}" for path, data in secret_files(docs, deployment).items() for key in data}
        named = {item["name"]: item["value"] for item in container.get("env", []) if item["name"].endswith("_FILE")}
        assert named, f"{name}: no credential files"
        for variable, path in named.items():
            assert path in files, f"{name}: {variable}={path} is no file of a mounted Secret ({sorted(files)})"


def ingress_routes(overlay):
    docs = rendered[overlay]
    ingress = next(iter(objects(docs, "Ingress").values()))
    services = objects(docs, "Service")
    routes = []
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] in services, f"Ingress names a missing Service {backend['name']}"
            assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
            routes.append((path["path"], backend["name"]))

    def backend_for(url_path):
        # ingress-nginx with use-regex: the longest matching path (as a prefix regex) wins.
        matches = [(len(p), svc) for p, svc in routes if re.match(p if p != "/" else "/", url_path)]
        return max(matches)[1]

    event = "6b026ab2686c822a56b0fe36"
    expected = {
        f"/events/{event}/bookings": "booking-service",
        "/bookings/6b026ab2686c822a56b0fe37": "booking-service",
        "/users/alice/bookings": "booking-service",
        "/events": "event-service",
        f"/events/{event}": "event-service",
        "/locations": "event-service",
    }
    for url_path, service in expected.items():
        assert backend_for(url_path) == service, f"{url_path} goes to {backend_for(url_path)}"


def network_policies(overlay):
    docs = rendered[overlay]
    policies = objects(docs, "NetworkPolicy")
    default = policies["default-deny"]["spec"]
    assert default["podSelector"] == {} and set(default["policyTypes"]) == {"Ingress", "Egress"}
    selected = set()
    for policy in policies.values():
        labels = policy["spec"]["podSelector"].get("matchLabels", {})
        if "app.kubernetes.io/name" in labels:
            selected.add(labels["app.kubernetes.io/name"])
    for kind in ("Deployment", "StatefulSet"):
        for name in objects(docs, kind):
            assert name in selected, f"{overlay}: no NetworkPolicy lets {name} talk"


def container_env(workload):
    """A workload's first container's env: {name: value, or the valueFrom mapping}."""
    container = workload["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def url_hosts(url):
    """The host:port of each URL of a comma-separated list, or of each host of a MongoDB seed list
    (user information dropped)."""
    return [re.sub(r"^[a-z+]+://", "", part.strip()).split("/")[0].split("?")[0].rsplit("@", 1)[-1]
            for part in url.split(",")]


def replicated(overlay):
    """Each stateful dependency: three replicas started together, one per node, spread across zones,
    a PodDisruptionBudget of one, its members allowed to talk to each other; and the services name
    every member, with the replication the dependency is set up for."""
    docs = rendered[overlay]
    broker = PRODUCTION[overlay]
    statefulsets = objects(docs, "StatefulSet")
    assert set(statefulsets) == {"mongodb", broker}, f"stateful workloads {sorted(statefulsets)}"
    budgets = objects(docs, "PodDisruptionBudget").values()
    policies = objects(docs, "NetworkPolicy").values()
    members = {}
    for name, workload in statefulsets.items():
        spec = workload["spec"]
        labels = spec["selector"]["matchLabels"]
        assert spec["replicas"] == 3, f"{name}: {spec['replicas']} replicas"
        assert spec.get("podManagementPolicy") == "Parallel", f"{name}: members not started together"
        covering = [b["spec"] for b in budgets if b["spec"]["selector"]["matchLabels"] == labels]
        assert [b.get("maxUnavailable") for b in covering] == [1], f"{name}: no PodDisruptionBudget of one"
        pod = workload["spec"]["template"]["spec"]
        apart = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert any(term["topologyKey"] == "kubernetes.io/hostname" and term["labelSelector"]["matchLabels"] == labels
                   for term in apart), f"{name}: two members may share a node"
        assert any(c["topologyKey"] == "topology.kubernetes.io/zone" and c["labelSelector"]["matchLabels"] == labels
                   for c in pod["topologySpreadConstraints"]), f"{name}: not spread across zones"

        def peers(rule, direction):
            return any(peer.get("podSelector", {}).get("matchLabels") == labels for peer in rule.get(direction, []))
        talk = [p["spec"] for p in policies if p["spec"]["podSelector"].get("matchLabels") == labels]
        assert any(peers(rule, "from") for p in talk for rule in p.get("ingress", [])), f"{name}: members get nothing from each other"
        assert any(peers(rule, "to") for p in talk for rule in p.get("egress", [])), f"{name}: members send nothing to each other"
        members[name] = [f"{name}-{i}.{spec['serviceName']}" for i in range(3)]

    mongodb = statefulsets["mongodb"]["spec"]["template"]["spec"]["containers"][0]
    replica_set = mongodb["args"][mongodb["args"].index("--replSet") + 1]
    initiate = " ".join(mongodb["startupProbe"]["exec"]["command"])
    named = re.findall(r"host: '([^']+)'", initiate)
    assert named == [f"{m}:27017" for m in members["mongodb"]], f"the set is initiated with {named}"
    for name in SERVICES:
        settings = service_settings(docs, objects(docs, "Deployment")[name])
        mongo_url = settings["MONGO_URL"]
        assert url_hosts(mongo_url) == named, f"{name}: MONGO_URL names {url_hosts(mongo_url)}"
        assert f"replicaSet={replica_set}" in mongo_url, f"{name}: MONGO_URL does not name the set {replica_set}"
        assert not re.search(r"[?&]w=", mongo_url), f"{name}: MONGO_URL overrides the services' write concern"
        if broker == "rabbitmq":
            assert url_hosts(settings["AMQP_BROKER_URL"]) == [f"{m}:5672" for m in members["rabbitmq"]], (
                f"{name}: AMQP_BROKER_URL names {url_hosts(settings['AMQP_BROKER_URL'])}")
            assert settings.get("AMQP_QUEUE_TYPE", "quorum") == "quorum", f"{name}: queues not replicated"
        else:
            assert settings["KAFKA_BROKER_URLS"].split(",") == [f"{m}:9092" for m in members["kafka"]], (
                f"{name}: KAFKA_BROKER_URLS {settings['KAFKA_BROKER_URLS']}")
            assert (settings["KAFKA_REPLICATION_FACTOR"], settings["KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2"), name

    if broker == "rabbitmq":
        env = container_env(statefulsets["rabbitmq"])
        assert env["RABBITMQ_NODENAME"] == "rabbit@$(POD_NAME).rabbitmq"
        assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        conf = next(c for c in objects(docs, "ConfigMap").values() if "cluster.conf" in c.get("data", {}))
        settings = dict(line.split(" = ", 1) for line in conf["data"]["cluster.conf"].splitlines()
                        if line and not line.startswith("#"))
        peers = [v for k, v in sorted(settings.items()) if k.startswith("cluster_formation.classic_config.nodes.")]
        assert peers == [f"rabbit@{m}" for m in members["rabbitmq"]], f"peer discovery lists {peers}"
        assert settings["quorum_queue.continuous_membership_reconciliation.target_group_size"] == "3"
        pod = statefulsets["rabbitmq"]["spec"]["template"]["spec"]
        cookie = next(v for v in pod["volumes"] if v["name"] == "erlang-cookie")["secret"]["secretName"]
        assert ".erlang.cookie" in objects(docs, "Secret")[cookie]["data"], "no Erlang cookie shared by the nodes"
    else:
        env = container_env(statefulsets["kafka"])
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert voters == [f"{i}@{m}:9093" for i, m in enumerate(members["kafka"])], f"voters {voters}"
        assert env["KAFKA_NODE_ID"] == {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}
        assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://$(POD_NAME).kafka:9092"
        for setting, value in (("KAFKA_DEFAULT_REPLICATION_FACTOR", "3"), ("KAFKA_MIN_INSYNC_REPLICAS", "2"),
                               ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
                               ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "3"),
                               ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "2")):
            assert env.get(setting) == value, f"kafka: {setting}={env.get(setting)}, not {value}"


def on_managed_services(overlay):
    """No broker or database workload; the services on SNS + SQS and DynamoDB (a table each) with a
    region, each under its own ServiceAccount naming an IAM role (IRSA), allowed out to AWS (443)."""
    docs = rendered[overlay]
    assert not objects(docs, "StatefulSet"), f"stateful workloads {sorted(objects(docs, 'StatefulSet'))}"
    accounts = objects(docs, "ServiceAccount")
    egress_ports = {
        port["port"]
        for policy in objects(docs, "NetworkPolicy").values()
        if "Egress" in policy["spec"].get("policyTypes", [])
        for rule in policy["spec"].get("egress", [])
        if "to" not in rule
        for port in rule.get("ports", [])
    }
    assert 443 in egress_ports, f"egress anywhere only to {sorted(egress_ports)}"
    tables = set()
    for name in SERVICES:
        deployment = objects(docs, "Deployment")[name]
        settings = service_settings(docs, deployment)
        assert settings["BROKER_KIND"] == "sqs", f"{name}: BROKER_KIND={settings['BROKER_KIND']}"
        assert settings["STORE_KIND"] == "dynamodb", f"{name}: STORE_KIND={settings['STORE_KIND']}"
        assert settings.get("AWS_REGION"), f"{name}: no AWS_REGION"
        table = settings.get("DYNAMODB_TABLE")
        assert table, f"{name}: no DYNAMODB_TABLE"
        tables.add(table)
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        role = accounts[account]["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn", "")
        assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", role), f"{name}: role {role!r}"
    assert len(tables) == len(SERVICES), f"the services share a table: {sorted(tables)}"


def main():
    tally = Tally("deploy manifests")
    for overlay in OVERLAYS:
        if not tally.check(f"k8s/overlays/{overlay} renders", renders, overlay):
            continue
        tally.check(f"k8s/overlays/{overlay} validates strictly against Kubernetes {KUBERNETES_VERSION}", validates, overlay)
        tally.check(f"k8s/overlays/{overlay}: probes, ports, grace period, replicas agree with the services", probes_and_ports_match, overlay)
        tally.check(f"k8s/overlays/{overlay}: non-root, no capabilities, seccomp, limits", security_contexts, overlay)
        tally.check(f"k8s/overlays/{overlay}: credentials only as files of a mounted Secret", credentials_are_files, overlay)
        tally.check(f"k8s/overlays/{overlay}: the Ingress sends bookings to the booking service", ingress_routes, overlay)
        tally.check(f"k8s/overlays/{overlay}: every workload has a NetworkPolicy", network_policies, overlay)
        if overlay in MANAGED:
            tally.check(f"k8s/overlays/{overlay}: no broker or database workload, SNS + SQS and DynamoDB "
                        "(a table per service) with IAM roles for the service accounts",
                        on_managed_services, overlay)
        if overlay in PRODUCTION:
            tally.check(f"k8s/overlays/{overlay}: each stateful dependency on three nodes, a PodDisruptionBudget "
                        "of one, the services naming every member", replicated, overlay)
    tally.check("checkov (Kubernetes checks) reports no failure that is not skipped with a reason", scanned)
    tally.check("hadolint passes every Dockerfile", dockerfiles_lint)
    tally.check("docker-compose.yml parses (docker-compose 1.29), with and without the kafka and aws profiles", compose_parses)
    if len(rendered) == len(OVERLAYS):
        tally.check("every variable compose and the manifests set is one the services read (and docs/configuration.md and .env.example list)", variables_are_read)
    tally.finish()


if __name__ == "__main__":
    main()
