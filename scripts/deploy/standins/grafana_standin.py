"""Stand-in for Grafana in the compose test: loads the provisioning directory the way Grafana does
(datasources/*.yaml, dashboards/*.yaml providers whose options.path holds dashboard JSON files) and
exits non-zero when anything is missing or malformed; then serves GET /api/health and
GET /api/dashboards/uid/<uid> (the provisioned dashboard) and GET /api/datasources on port 3000."""

import glob
import http.server
import json
import os
import sys

import yaml

root = os.environ.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")


def load_yaml_dir(kind):
    documents = []
    for path in sorted(glob.glob(os.path.join(root, kind, "*.y*ml"))):
        with open(path, encoding="utf-8") as f:
            documents.append(yaml.safe_load(f))
    if not documents:
        sys.exit(f"no {kind} provisioning files under {root}/{kind}")
    return documents


datasources = [d for doc in load_yaml_dir("datasources") for d in doc.get("datasources", [])]
if not datasources:
    sys.exit("no data source provisioned")
dashboards = {}
for doc in load_yaml_dir("dashboards"):
    for provider in doc.get("providers", []):
        path = provider["options"]["path"]
        files = sorted(glob.glob(os.path.join(path, "*.json")))
        if not files:
            sys.exit(f"dashboard provider {provider.get('name')!r}: no JSON under {path}")
        for file in files:
            with open(file, encoding="utf-8") as f:
                dashboard = json.load(f)
            dashboards[dashboard["uid"]] = dashboard


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/api/health":
            body = {"database": "ok", "version": "stand-in"}
        elif self.path == "/api/datasources":
            body = datasources
        elif self.path.startswith("/api/dashboards/uid/") and self.path[20:] in dashboards:
            body = {"dashboard": dashboards[self.path[20:]]}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


print(f"provisioned {len(datasources)} data sources and dashboards {sorted(dashboards)}", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", 3000), Handler).serve_forever()
