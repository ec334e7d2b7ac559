"""Reproduces a SecantusDB 0.7.0b3 hang: `createIndexes` and `insert` racing to create the same new
collection leave a connection thread stuck inside WiredTiger while it holds the storage-wide lock, after
which every command that takes the lock (insert, find, listDatabases, ...) hangs. Real MongoDB serialises
implicit collection creation. Our MongoDB adapter avoids the race by creating its indexes before it
accepts writes (see crates/myevents-store/src/mongo/mod.rs).

Usage: python secantus_concurrent_create.py [ROUNDS] [MODE]   (starts and stops its own server)
MODE: `mixed` (default: createIndexes and inserts), `inserts` (inserts only), `indexes` (createIndexes
only), `precreated` (createIndexes on each database first, then the inserts concurrently).
Exit code 0 and "no hang" when the server behaves; 1 and "HANG" when it reproduces.
"""
import socket
import subprocess
import sys
import threading
import time

import pymongo


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quietly(action):
    def run():
        try:
            action()
        except Exception:  # the server is killed under a hung thread; its error is not the finding
            pass
    return run


def main(rounds, mode):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable.replace("python", "secantusd-py").replace("secantusd-py3", "secantusd-py"),
         "--host", "127.0.0.1", "--port", str(port), "--storage-path", ":memory:",
         "--log-level", "ERROR"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=10000)
        client.admin.command("ping")
        for i in range(rounds):
            # As our tests do: several fresh databases at once, each with a background createIndexes
            # while inserts create its collections.
            threads = []
            for j in range(4):
                db = client[f"repro{i}_{j}"]
                index = lambda db=db: db["events"].create_index([("name", 1), ("_id", 1)])
                if mode == "precreated":
                    index()
                actions = []
                if mode in ("mixed", "indexes"):
                    actions.append(index)
                if mode in ("mixed", "inserts", "precreated"):
                    actions.append(lambda db=db: db["events"].insert_one({"name": "x"}))
                    actions.append(lambda db=db: db["locations"].insert_one({"name": "y"}))
                threads += [threading.Thread(target=quietly(a), daemon=True) for a in actions]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=10)
            if any(t.is_alive() for t in threads):
                print(f"HANG in round {i} ({mode})")
                return 1
        print(f"no hang in {rounds} rounds ({mode})")
        return 0
    finally:
        server.kill()


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50,
                  sys.argv[2] if len(sys.argv) > 2 else "mixed"))
