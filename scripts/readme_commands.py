"""Runs every command the docs show (the shell blocks of README.md and of docs/*.md), so that a renamed
package, binary, feature or flag fails the test command instead of the reader.

The blocks of one section (a `##` heading) run in order in one bash session, as a reader following
that section in one terminal would (what one block exports, the next sees); each section starts a
fresh session. From the repository root:

- `cargo run …` lines: cargo's own selection (package, binary, features) is resolved against
  `cargo metadata` exactly as cargo would (a package or feature that does not exist, or a package
  with no binary, fails), then the test command's build of that binary (target/debug) runs with the
  line's arguments. A line that starts a server (no arguments after `--`) is started in the
  background, probed until `/readyz` answers 200 on its port, and stopped with SIGTERM at the end of
  its block (it must exit 0 within 30 s). Not built here in the release profile: one release build
  costs the test command ten minutes on two cores, and the profile changes nothing cargo resolves.
- `$ `-prompted sessions (the curl walk-through): each command runs, and its answer must have the
  shape of the one shown: the same keys and types, the same values except ids and dates.
- a `# 401`-style comment after a curl line: the answer's status.
- `booking-service …`/`event-service …` lines: the binaries, as built.
- `cargo bench` lines: the package and bench target must exist (the bench itself is minutes long).
- what cannot run on a machine without an image registry or a Kubernetes cluster (`docker compose`,
  `docker build`, `kind`, `kubectl`) is listed as skipped, with what covers it instead.

Environment: MYEVENTS_TEST_MONGO_URL (the MongoDB-wire test server, used wherever a command names
localhost:27017), MYEVENTS_TEST_KAFKA_BROKERS (likewise for localhost:9092), and RabbitMQ on
127.0.0.1:5672 with guest/guest, as the docs assume.

Usage: readme_commands.py            run every block
       readme_commands.py cargo ARGS  (internal) resolve `cargo ARGS` and run it as described
"""

import glob
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
# The port each server binary listens on by default (LISTEN_URL unset), for its readiness probe.
SERVER_PORTS = {"myevents": [8181, 8282], "event-service": [8181], "booking-service": [8282]}
SKIPPED = {
    "docker compose": "needs the upstream images (no registry here); scripts/deploy/test.sh runs "
                      "docker-compose.yml with stand-in images, over RabbitMQ, Kafka and SNS + SQS with DynamoDB",
    "docker-compose": "as `docker compose`",
    "BROKER_KIND=kafka docker compose": "as `docker compose`",
    "BROKER_KIND=sqs docker compose": "as `docker compose`",
    "BROKER_KIND=sqs STORE_KIND=dynamodb docker compose": "as `docker compose`",
    "docker build": "needs the upstream base images; scripts/deploy/test.sh builds the same "
                    "Dockerfile targets on stand-ins",
    "kind": "no Kubernetes cluster here; scripts/deploy/check_manifests.py renders and validates "
            "the overlays",
    "kubectl": "as `kind`",
    "./scripts/test.sh": "this is the command running now",
}


def metadata():
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    default = set(data.get("workspace_default_members") or data["workspace_members"])
    return data["packages"], default


def resolve(args):
    """`cargo run …` or `cargo bench …` → (binary path or None, its arguments, is_server)."""
    command, rest = args[0], args[1:]
    passthrough = []
    if "--" in rest:
        i = rest.index("--")
        rest, passthrough = rest[:i], rest[i + 1:]
    package = binary = bench = None
    features = []
    it = iter(rest)
    for arg in it:
        if arg in ("-p", "--package"):
            package = next(it)
        elif arg == "--bin":
            binary = next(it)
        elif arg == "--bench":
            bench = next(it)
        elif arg in ("-F", "--features"):
            features += re.split(r"[ ,]+", next(it).strip())
        elif arg in ("--release", "-q", "--quiet", "--locked", "--all-features"):
            pass
        else:
            raise SystemExit(f"cargo {' '.join(args)}: unexpected argument {arg!r} (teach readme_commands.py)")
    packages, default = metadata()
    if package:
        matches = [p for p in packages if p["name"] == package]
        if not matches:
            raise SystemExit(f"cargo {' '.join(args)}: no package {package!r} in the workspace")
    else:
        matches = [p for p in packages if p["id"] in default]
    for feature in features:
        if not any(feature in p["features"] for p in matches):
            raise SystemExit(f"cargo {' '.join(args)}: no feature {feature!r} in {[p['name'] for p in matches]}")
    kind = "bench" if command == "bench" else "bin"
    targets = [t["name"] for p in matches for t in p["targets"] if kind in t["kind"]]
    wanted = bench if command == "bench" else binary
    if wanted is not None and wanted not in targets:
        raise SystemExit(f"cargo {' '.join(args)}: no {kind} target named {wanted!r} (has {targets})")
    if command == "bench":
        return None, [], False
    if wanted is None:
        if len(targets) != 1:
            raise SystemExit(f"cargo {' '.join(args)}: cargo cannot pick one binary among {targets}")
        wanted = targets[0]
    return os.path.join(TARGET, "debug", wanted), passthrough, not passthrough


def cargo_main(args):
    """Called by the session's `cargo` function: resolves, then runs (servers in the background)."""
    if not args or args[0] not in ("run", "bench"):
        raise SystemExit(f"cargo {' '.join(args)}: only `cargo run` and `cargo bench` are understood")
    path, passthrough, server = resolve(args)
    if path is None:
        print(f"[readme] cargo {' '.join(args)}: package and bench target exist (not run: minutes long)",
              file=sys.stderr)
        return 0
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: build the workspace first")
    if os.path.basename(path) == "myevents-bench":
        print(f"[readme] cargo {' '.join(args)}: resolved; the test command runs the bench once in its "
              "tiny configuration, every scenario", file=sys.stderr)
        return 0
    env = dict(os.environ)
    # The test servers stand in for the ones the docs assume on localhost.
    if env.get("MONGO_URL", "").startswith("mongodb://localhost:27017") and env.get("MYEVENTS_TEST_MONGO_URL"):
        env["MONGO_URL"] = env["MYEVENTS_TEST_MONGO_URL"]
    if env.get("KAFKA_BROKER_URLS") == "localhost:9092" and env.get("MYEVENTS_TEST_KAFKA_BROKERS"):
        env["KAFKA_BROKER_URLS"] = env["MYEVENTS_TEST_KAFKA_BROKERS"]
    if not server:
        os.execve(path, [path] + passthrough, env)
    log = open(os.environ["README_SERVER_LOG"], "ab")
    process = subprocess.Popen([path], env=env, stdout=log, stderr=log, start_new_session=True)
    ports = SERVER_PORTS.get(os.path.basename(path))
    if env.get("LISTEN_URL"):
        ports = [int(env["LISTEN_URL"].rsplit(":", 1)[1])]
    deadline = time.monotonic() + 60
    for port in ports:
        last = "no answer"
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{path} exited {process.returncode} before it was ready")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except urllib.error.HTTPError as answer:
                last = f"{answer.code} {answer.read().decode(errors='replace')}"
            except OSError as error:
                last = str(error)
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                raise SystemExit(f"{path} not ready on port {port} within 60 s; /readyz: {last}")
            time.sleep(0.2)
    with open(os.environ["README_SERVERS"], "a") as servers:
        servers.write(f"{process.pid}\n")
    print(f"[readme] {os.path.basename(path)} ready on {ports} (pid {process.pid})", file=sys.stderr)
    return 0


def blocks():
    """(file, section, first line number, lines) of every shell block of the docs."""
    found = []
    for path in ["README.md"] + sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)):
        lines = open(os.path.join(ROOT, path)).read().splitlines()
        i, section = 0, ""
        while i < len(lines):
            if lines[i].startswith("## "):
                section = lines[i][3:].strip()
            if re.match(r"^```(sh|bash|shell|console)\s*$", lines[i]):
                start, body = i + 1, []
                i += 1
                while not lines[i].startswith("```"):
                    body.append(lines[i])
                    i += 1
                found.append((os.path.relpath(os.path.join(ROOT, path), ROOT), section, start + 1, body))
            i += 1
    return found


def logical_lines(body):
    """Joins continuation lines (a trailing backslash)."""
    out, current = [], ""
    for line in body:
        if current:
            current += "\n" + line
        else:
            current = line
        if not current.endswith("\\"):
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def skip_reason(command):
    for prefix, reason in SKIPPED.items():
        if command == prefix or command.startswith(prefix + " "):
            return reason
    return None


STATUS = re.compile(r"\n?@@STATUS (\d{3})@@\n?")
ANONYMOUS = {"ID", "EventID", "Date"}


def same_shape(shown, got, where="answer"):
    """None when `got` has the shape of `shown`, else what differs."""
    if isinstance(shown, dict):
        if not isinstance(got, dict) or set(shown) != set(got):
            return f"{where}: keys {sorted(shown) if isinstance(shown, dict) else shown} != {sorted(got) if isinstance(got, dict) else got}"
        for key in shown:
            if key in ANONYMOUS:
                if type(shown[key]) is not type(got[key]):
                    return f"{where}.{key}: {got[key]!r} is not like {shown[key]!r}"
                continue
            problem = same_shape(shown[key], got[key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(shown, list):
        if not isinstance(got, list) or len(shown) != len(got):
            return f"{where}: {got!r} is not a list of {len(shown)}"
        for n, (a, b) in enumerate(zip(shown, got)):
            problem = same_shape(a, b, f"{where}[{n}]")
            if problem:
                return problem
        return None
    return None if shown == got else f"{where}: {got!r} where the docs show {shown!r}"


class Session:
    """One bash process the commands are sent to, one at a time."""

    def __init__(self, workdir):
        self.servers = os.path.join(workdir, "servers")
        self.server_log = os.path.join(workdir, "servers.log")
        open(self.servers, "w").close()
        env = dict(os.environ, README_SERVERS=self.servers, README_SERVER_LOG=self.server_log,
                   PS1="", PROMPT_COMMAND="")
        self.bash = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        harness = shlex.quote(os.path.abspath(__file__))
        self.send(f"cargo() {{ python3 {harness} cargo \"$@\"; }}\n"
                  "curl() { command curl -w '\\n@@STATUS %{http_code}@@\\n' \"$@\"; }\n"
                  f"export PATH={shlex.quote(os.path.join(TARGET, 'debug'))}:$PATH\n")

    def send(self, script):
        """Runs `script`; returns (exit status, output)."""
        marker = f"@@DONE {time.monotonic_ns()}@@"
        self.bash.stdin.write(f"{script}\nprintf '\\n{marker} %s\\n' \"$?\"\n")
        self.bash.stdin.flush()
        out = []
        while True:
            line = self.bash.stdout.readline()
            if not line:
                raise AssertionError("the shell ended:\n" + "".join(out))
            if line.startswith(marker):
                return int(line.split()[-1]), "".join(out).rstrip("\n")
            out.append(line)

    def stop_servers(self):
        """SIGTERM to the servers started so far; each must exit within 30 s."""
        pids = [int(p) for p in open(self.servers).read().split()]
        open(self.servers, "w").close()
        problems = []
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                problems.append(f"server {pid} had already exited")
                continue
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.killpg(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
                problems.append(f"server {pid} did not stop within 30 s of SIGTERM")
        return problems

    def close(self):
        self.stop_servers()
        self.bash.stdin.close()
        self.bash.wait(timeout=10)


def run_all():
    ran, skipped, failures = 0, [], []
    with tempfile.TemporaryDirectory() as workdir:
        session, current = None, None
        try:
            for path, section, first, body in blocks():
                where = f"{path}:{first}"
                if (path, section) != current:
                    if session:
                        session.close()
                    session, current = Session(workdir), (path, section)
                if any(line.startswith("$ ") for line in body):
                    ran += prompted(session, where, body, failures)
                else:
                    for command in logical_lines(body):
                        text = command.split("  #")[0].strip() if "  #" in command else command.strip()
                        if not text or text.startswith("#"):
                            continue
                        reason = skip_reason(text)
                        if reason:
                            skipped.append((where, text, reason))
                            continue
                        ran += 1
                        failure = plain(session, command)
                        if failure:
                            failures.append(f"{where}: {text}\n    {failure}")
                for problem in session.stop_servers():
                    failures.append(f"{where}: {problem}")
        finally:
            if session:
                session.close()
            log = os.path.join(workdir, "servers.log")
            if failures and os.path.exists(log):
                print(open(log, errors="replace").read()[-4000:])
    for where, text, reason in skipped:
        print(f"    skipped {where}: {text.splitlines()[0]}\n        ({reason})")
    print(f"    {ran} commands ran, {len(skipped)} skipped, {len(failures)} failed")
    for failure in failures:
        print(f"FAILED {failure}")
    return 1 if failures else 0


def plain(session, command):
    """Runs one line of a plain block; a server line is backgrounded by the `cargo` function."""
    expected = re.search(r"#\s*(\d{3})\s*$", command)
    background = command.rstrip().endswith("&") or re.search(r"\s&\s+#", command)
    script = command
    if background:
        # `cargo run … &`: the `cargo` function starts the server itself and waits for it.
        script = re.sub(r"\s&(\s+#.*)?$", r"\1", command.rstrip())
    status, out = session.send(script)
    if status != 0:
        return f"exit status {status}:\n{out}"
    if expected:
        codes = STATUS.findall(out)
        if codes != [expected.group(1)]:
            return f"answered {codes}, the docs say {expected.group(1)}:\n{out}"
    print(f"    ok {script.splitlines()[0][:110]}", flush=True)
    return None


def prompted(session, where, body, failures):
    """A `$ `-prompted session: each command, and the answer it shows after it."""
    steps, current = [], None
    for line in body:
        if line.startswith("$ "):
            current = {"command": line[2:], "shown": []}
            steps.append(current)
        elif current is not None and current["command"].endswith("\\"):
            current["command"] += "\n" + line
        elif current is not None and line.strip():
            current["shown"].append(line)
    if not steps:
        return 0
    # A walk-through of the embedded suite: start it first, as its text says.
    status, out = session.send("cargo run --release")
    if status != 0:
        failures.append(f"{where}: starting the embedded suite: {out}")
        return 0
    for step in steps:
        status, out = session.send(step["command"])
        answer = STATUS.sub("", out).strip()
        if status != 0:
            failures.append(f"{where}: $ {step['command']}\n    exit status {status}: {out}")
            continue
        if step["shown"]:
            shown = "\n".join(step["shown"])
            try:
                problem = same_shape(json.loads(shown), json.loads(answer))
            except json.JSONDecodeError as error:
                problem = f"not JSON ({error}): {answer!r}"
            if problem:
                failures.append(f"{where}: $ {step['command'].splitlines()[0]}\n    {problem}")
                continue
        print(f"    ok $ {step['command'].splitlines()[0][:110]}", flush=True)
    return len(steps)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "cargo":
        sys.exit(cargo_main(sys.argv[2:]))
    sys.exit(run_all())
