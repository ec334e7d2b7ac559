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
    EXIT_AFTER_SHUTDOWN_SECONDS, OVERLAYS, ROOT, SERVICES, Tally, compose_file,
    deployment_environment, documented_variables, example_variables, objects, port_of, render, rendered_text, secret_files,
    routes_served, run, variables_read,
)

KUBERNETES_VERSION = "1.37.0"
rendered = {}


def renders(overlay):
    rendered[overlay] = render(overlay)
    kinds = {d["kind"] for d in rendered[overlay]}
    for kind in ("Deployment", "StatefulSet", "Service", "HorizontalPodAutoscaler",
                 "PodDisruptionBudget", "NetworkPolicy", "Ingress", "ConfigMap", "Secret"):
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
    run("docker-compose", "-f", "docker-compose.yml", "-f", "scripts/deploy/compose.standins.yml",
        "--profile", "kafka", "config", "-q")


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
    tally.check("checkov (Kubernetes checks) reports no failure that is not skipped with a reason", scanned)
    tally.check("hadolint passes every Dockerfile", dockerfiles_lint)
    tally.check("docker-compose.yml parses (docker-compose 1.29), with and without the kafka profile", compose_parses)
    if len(rendered) == len(OVERLAYS):
        tally.check("every variable compose and the manifests set is one the services read (and docs/configuration.md and .env.example list)", variables_are_read)
    tally.finish()


if __name__ == "__main__":
    main()
