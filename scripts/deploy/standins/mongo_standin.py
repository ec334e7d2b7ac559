"""Stand-in for mongo:7's `mongod`: SecantusDB (the MongoDB-wire test server of the test suite) under
mongod's own flags, so that docker-compose.yml and the manifests run it unchanged:

  --replSet NAME   a one-member replica set called NAME whose member is this container's host name
                   (the name the services reach it by, as the compose health check's `rs.initiate()`
                   names it on mongo:7); without it, a standalone server
  --bind_ip_all    listen on every interface (else 127.0.0.1, as mongod)
  --port N         the port (default 27017)
  --dbpath DIR     the data directory (default /data/db)

Where it is not mongod (the deployment tests say so): its set is initiated from the start, where
mongod's waits for `rs.initiate()`; and started standalone it still runs multi-document transactions,
which mongod refuses ("Transaction numbers are only allowed on a replica set member or mongos"). The
services check the topology themselves (`hello`) for that reason."""

import argparse
import socket
import sys

import secantus.cli as cli
from secantus.server import SecantusDBServer

parser = argparse.ArgumentParser(prog="mongod (stand-in)")
parser.add_argument("--replSet", dest="replica_set")
parser.add_argument("--bind_ip_all", action="store_true")
parser.add_argument("--port", type=int, default=27017)
parser.add_argument("--dbpath", default="/data/db")
args = parser.parse_args()
member = socket.gethostname()


class StandIn(SecantusDBServer):
    """SecantusDB advertising the set `--replSet` names, with this host's name as its member."""

    def __init__(self, **kwargs):
        if kwargs.get("replica_set_name"):
            kwargs["replica_set_name"] = args.replica_set
        super().__init__(**kwargs)

    @property
    def address(self):
        _, port = super().address
        return member, port


cli.SecantusDBServer = StandIn
flags = ["--host", "0.0.0.0" if args.bind_ip_all else "127.0.0.1", "--port", str(args.port),
         "--storage-path", args.dbpath, "--log-level", "WARNING"]
if not args.replica_set:
    flags.append("--standalone")
print(f"mongod stand-in: SecantusDB, {'replica set ' + args.replica_set + ' member ' + member if args.replica_set else 'standalone'}"
      f", port {args.port}", flush=True)
sys.exit(cli.main(flags))
