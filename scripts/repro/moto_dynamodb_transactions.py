"""Reproduces two faults of moto 5.2.6's DynamoDB in server mode, which scripts/aws_test_server.py
works around (the test command starts moto through it):

1. TransactWriteItems is not safe across the server's threads: concurrent transactions on one table
   fail with HTTP 500 (`RuntimeError: dictionary changed size during iteration`, from the deep copy
   of the table it takes for its rollback), and a cancelled one puts that copy back, undoing writes
   other requests made meanwhile. DynamoDB applies each transaction atomically.
2. That copy costs in proportion to the whole table: each transaction gets slower as the table
   grows.

Usage: python moto_dynamodb_transactions.py [wrapped]   (with moto's virtualenv; starts and stops its
own server: plain `moto_server`, or with `wrapped` scripts/aws_test_server.py). Exit code 1 and
"REPRODUCED" when a fault shows, 0 and "no fault" when the server behaves.
"""
import os
import socket
import subprocess
import sys
import threading
import time

import boto3
from botocore.config import Config


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.argv[1:] == ["wrapped"]:
        command = [sys.executable, os.path.join(here, "..", "aws_test_server.py"), "-p", str(port)]
    else:
        command = [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="eu-west-1",
                              aws_access_key_id="t", aws_secret_access_key="t",
                              config=Config(retries={"max_attempts": 1}, max_pool_connections=32))
        table = "repro"
        client.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        for i in range(2000):
            client.put_item(TableName=table, Item={"pk": {"S": f"filler{i}"}, "data": {"S": "x" * 100}})
        faults = []

        def transact(worker):
            for i in range(20):
                try:
                    client.transact_write_items(TransactItems=[
                        {"Put": {"TableName": table, "Item": {"pk": {"S": f"w{worker}-{i}"}}}},
                        {"Put": {"TableName": table, "Item": {"pk": {"S": f"w{worker}-{i}-b"}}}},
                    ])
                except Exception as error:  # noqa: BLE001 - every failure is a fault here
                    faults.append(str(error))

        started = time.time()
        workers = [threading.Thread(target=transact, args=(w,)) for w in range(16)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.time() - started
        lost = sum(1 for w in range(16) for i in range(20)
                   if "Item" not in client.get_item(TableName=table, Key={"pk": {"S": f"w{w}-{i}"}}))
        print(f"320 transactions on a table of 2,000 items from 16 threads: {len(faults)} failed, "
              f"{lost} writes missing afterwards, {elapsed / 320 * 1000:.1f} ms a transaction")
        if faults or lost:
            print("REPRODUCED:", faults[:1])
            return 1
        print("no fault")
        return 0
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
