"""Shared pieces of the deploy checks: a tally of named checks, HTTP with a deadline, rendering the
Kubernetes overlays, and what the services read and serve (taken from the sources, so that the
manifests, the compose file and the binaries cannot drift apart)."""

import base64
import functools
import json
import os
import re
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OVERLAYS = ["rabbitmq", "kafka", "production", "production-kafka", "aws"]
# Overlays whose broker and database are managed services: no stateful workload in the cluster.
MANAGED = {"aws"}
# The production overlays and their broker: every stateful dependency replicated on three nodes.
PRODUCTION = {"production": "rabbitmq", "production-kafka": "kafka"}
SERVICES = ["event-service", "booking-service"]
# Read by libraries, not by a literal of ours: the tracing-subscriber crate (EnvFilter::from_default_env)
# and the AWS SDK's default chain (region, endpoint and the key pair; its other sources are documented
# in prose).
READ_BY_LIBRARIES = {"RUST_LOG", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
# SHUTDOWN_TIMEOUT bounds the whole shutdown after SIGTERM (SHUTDOWN_DELAY, requests, the message in
# hand, the outbox drain, the producer flush); what a service may still do after it, in seconds: stop
# an abandoned consumer (at most 1 s) and exit.
EXIT_AFTER_SHUTDOWN_SECONDS = 2


class Tally:
    """Runs named checks, prints each result, and a closing `N passed, N failed` line."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, title, fn, *args):
        started = time.monotonic()
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - every failure is reported and counted
            self.failed += 1
            print(f"FAIL {title} ({time.monotonic() - started:.1f} s)", flush=True)
            traceback.print_exc()
            sys.stdout.flush()
            return False
        self.passed += 1
        print(f"PASS {title} ({time.monotonic() - started:.1f} s)", flush=True)
        return True

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def request(method, url, body=None, headers=None, timeout=5.0, auth=None):
    """One HTTP request; returns (status, headers, parsed JSON or raw bytes). Never raises on a status."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, head, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, head, raw = error.code, dict(error.headers), error.read()
    try:
        return status, head, json.loads(raw) if raw else None
    except ValueError:
        return status, head, raw


def eventually(what, probe, seconds):
    """Polls `probe` until it returns a truthy value (returned), for at most `seconds`."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except OSError as error:  # connection refused or reset while a container starts
            last = error
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {seconds} s (last: {last!r})")


def run(*args, env=None, check=True, timeout=900):
    """Runs a command from the repository root; returns its output (standard output and error)."""
    full_env = dict(os.environ, **(env or {}))
    result = subprocess.run(
        list(args), cwd=ROOT, env=full_env, check=False, timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout or ''}")
    return result.stdout or ""


@functools.cache
def rendered_text(overlay):
    """What `kubectl kustomize k8s/overlays/<overlay>` prints (rendered once per run)."""
    return run("kubectl", "kustomize", f"k8s/overlays/{overlay}")


def render(overlay):
    """The objects `kubectl kustomize k8s/overlays/<overlay>` renders."""
    return [doc for doc in yaml.safe_load_all(rendered_text(overlay)) if doc]


def objects(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def deployment_environment(docs, deployment):
    """The environment a Deployment's first container gets: envFrom ConfigMaps and Secrets, then env."""
    config_maps, secrets = objects(docs, "ConfigMap"), objects(docs, "Secret")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            data = secrets[source["secretRef"]["name"]]["data"]
            env.update({k: base64.b64decode(v).decode() for k, v in data.items()})
    for item in container.get("env", []):
        env[item["name"]] = item["value"]
    return env


def secret_files(docs, deployment):
    """The Secrets a Deployment's first container mounts as files: {mount path: {file name: content}}."""
    secrets = objects(docs, "Secret")
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
    mounted = {}
    for mount in pod["containers"][0].get("volumeMounts", []):
        if mount["name"] in volumes:
            data = secrets[volumes[mount["name"]]]["data"]
            mounted[mount["mountPath"]] = {k: base64.b64decode(v).decode() for k, v in data.items()}
    return mounted


def service_settings(docs, deployment):
    """What a service reads: its environment, with each <NAME>_FILE replaced by <NAME> and the
    content of the mounted Secret's file it names."""
    env = deployment_environment(docs, deployment)
    files = {f"{path}/{key}": value for path, data in secret_files(docs, deployment).items()
             for key, value in data.items()}
    for variable in [v for v in env if v.endswith("_FILE")]:
        env[variable[:-len("_FILE")]] = files[env.pop(variable)].rstrip("\n")
    return env


def compose_file():
    with open(os.path.join(ROOT, "docker-compose.yml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def production_sources():
    """Every non-test Rust source of the crates and services (test modules cut off; the test kit and
    the bench command, which read their own variables, are not part of a service)."""
    for top in ("crates", "services"):
        for directory, _, files in os.walk(os.path.join(ROOT, top)):
            parts = directory.split(os.sep)
            if "src" not in parts or "tests" in parts or "myevents-testkit" in parts \
                    or "myevents-bench" in parts:
                continue
            for name in files:
                if name.endswith(".rs"):
                    with open(os.path.join(directory, name), encoding="utf-8") as f:
                        yield f.read().split("#[cfg(test)]")[0]


def variables_read():
    """The environment variables the services read: upper-case string literals passed to the config
    readers (`var`, `parse_or`, `seconds_or`, ... take the name as their first argument; `credential`
    reads NAME and NAME_FILE)."""
    names = set(READ_BY_LIBRARIES)
    call = re.compile(r'\b(?:var|parse_or|seconds_or|switch_or|listen_addr_or)\(\s*"([A-Z][A-Z0-9_]+)"')
    # A credential is read from its variable or from the file <NAME>_FILE names.
    credential = re.compile(r'\bcredential\(\s*"([A-Z][A-Z0-9_]+)"')
    constant = re.compile(r'\bconst [A-Z_]+: &str = "([A-Z][A-Z0-9_]+)";')
    # The host reads each service's queue from the variable its `HostDefaults` names.
    queue = re.compile(r'\bqueue_variable:\s*"([A-Z][A-Z0-9_]+)"')
    for source in production_sources():
        names.update(call.findall(source))
        for name in credential.findall(source):
            names.update((name, f"{name}_FILE"))
        names.update(constant.findall(source))
        names.update(queue.findall(source))
    return names


def documented_variables():
    """The variables of the configuration table (docs/configuration.md)."""
    with open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8") as f:
        return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", f.read(), re.MULTILINE))


def example_variables():
    """The variables .env.example sets or shows commented out (`NAME=` or `# NAME=` at a line's
    start)."""
    with open(os.path.join(ROOT, ".env.example"), encoding="utf-8") as f:
        return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", f.read(), re.MULTILINE))


def routes_served(service):
    """The paths a service serves without parameters, from its OpenAPI document
    (frontend-contract/openapi/<service>.json, which a test keeps equal to what the code
    routes): its own routes, and those the service host adds to every service (health,
    readiness, /version, /openapi.json, /docs)."""
    path = os.path.join(ROOT, "frontend-contract", "openapi", f"{service}.json")
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    return {p for p in document["paths"] if "{" not in p}


def port_of(address):
    return int(address.rsplit(":", 1)[1])
