"""The AWS-API test server: moto in server mode (SNS, SQS, DynamoDB), with two faults of moto 5.2.6's
DynamoDB worked around (scripts/repro/moto_dynamodb_transactions.py reproduces both):

1. Not safe across the server's threads. TransactWriteItems deep-copies every table it writes, for its
   rollback, while other requests change that table (HTTP 500, `RuntimeError: dictionary changed size
   during iteration`); a cancelled transaction puts the whole copy back, undoing what other requests
   wrote meanwhile; and a conditional PutItem or UpdateItem checks and writes in two steps another
   request can come between. DynamoDB applies each of them atomically.
   Here every call of the DynamoDB backend holds one lock: DynamoDB requests are served one at a time.
2. The copy costs in proportion to the whole table: with 5,000 items each transaction takes tens of
   milliseconds. Here a transaction backs up only the items it writes, and puts back only those when
   DynamoDB's rules cancel it.

And two of its server (werkzeug's development server):
3. One thread per connection, kept open between requests (HTTP/1.1 keep-alive): a burst of 1,000
   concurrent requests makes 1,000 threads contend for the interpreter, and the one serving DynamoDB
   gets about 10 requests a second. Here connections close after each answer (HTTP/1.0) and a pool
   of 64 threads serves them (SQS long polls hold a thread each while they wait).
4. It listens with a backlog of 128 connections: a burst of more has the kernel drop the others'
   SYNs, which the clients resend after 1, 3, 7 s. Here the backlog is 4,096.

SNS and SQS are served as moto serves them. Usage: the `moto_server` command's (-H HOST -p PORT),
with this virtualenv's python: `.cache/moto-venv/bin/python scripts/aws_test_server.py -p 5005`.
"""
import copy
import functools
from concurrent.futures import ThreadPoolExecutor
import inspect
import sys
import threading

import moto.dynamodb.models as dynamodb_models
import werkzeug.serving
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.server import main

LOCK = threading.RLock()


class _NoTableCopy:
    """Stands in for the `copy` module inside moto's DynamoDB models: a table is not copied (the
    transaction's own item backups below replace that copy); anything else is."""

    @staticmethod
    def deepcopy(value, *args, **kwargs):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, *args, **kwargs)


def _locked(method):
    @functools.wraps(method)
    def call(*args, **kwargs):
        with LOCK:
            return method(*args, **kwargs)

    return call


def _key_of(backend, op_type, op):
    table = backend.get_table(op["TableName"])
    if op_type != "Put":
        return op["Key"]
    item = op["Item"]
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _transact_write_items(original):
    @functools.wraps(original)
    def transact(self, transact_items):
        with LOCK:
            backups = []
            for entry in transact_items:
                op_type, op = next(iter(entry.items()))
                if op.get("TableName") not in self.tables:
                    continue
                try:
                    key = _key_of(self, op_type, op)
                    current = self.get_item(op["TableName"], key)
                except Exception:  # noqa: BLE001 - moto itself reports what is wrong with the request
                    continue
                before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
                backups.append((op["TableName"], key, before))
            try:
                return original(self, transact_items)
            except Exception:
                for table_name, key, before in reversed(backups):
                    if before is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, before)
                raise

    return transact


def patch():
    werkzeug.serving.BaseWSGIServer.request_queue_size = 4096
    MotoRequestHandler.protocol_version = "HTTP/1.0"
    workers = ThreadPoolExecutor(max_workers=64, thread_name_prefix="aws-test-server")

    def process_request(server, request, client_address):
        workers.submit(server.process_request_thread, request, client_address)

    werkzeug.serving.ThreadedWSGIServer.process_request = process_request
    dynamodb_models.copy = _NoTableCopy
    transact = _transact_write_items(DynamoDBBackend.transact_write_items)
    for name, member in inspect.getmembers(DynamoDBBackend, inspect.isfunction):
        if name.startswith("_") or name == "transact_write_items":
            continue
        setattr(DynamoDBBackend, name, _locked(member))
    DynamoDBBackend.transact_write_items = transact


if __name__ == "__main__":
    patch()
    sys.exit(main())
