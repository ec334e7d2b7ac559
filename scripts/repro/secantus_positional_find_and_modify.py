"""Reproduces a SecantusDB 0.7.0b3 bug: the positional operator (`"array.$.field"`) in a
`findAndModify` update fails with "The positional operator did not find the match needed from the
query" although the query matches the array element with `$elemMatch`; the same update sent as an
`update` command applies. Real MongoDB applies both. Our MongoDB adapter makes a waitlist's offer
with an `update` command and reads the inventory after it (see `offer_to_waitlists` in
crates/myevents-store/src/mongo/bookings.rs).

Usage: python secantus_positional_find_and_modify.py MONGO_URL
Exit code 0 and "no bug" when the server applies both; 1 and "BUG" when findAndModify fails.
"""
import sys

import pymongo
from pymongo import ReturnDocument

QUERY = {"_id": 1, "list": {"$elemMatch": {"id": 2, "offer": {"$exists": False}}}}
UPDATE = {"$set": {"list.$.offer": {"hold": 9}}}


def fresh(collection):
    collection.replace_one({"_id": 1}, {"_id": 1, "list": [{"id": 1}, {"id": 2}]}, upsert=True)


def main():
    collection = pymongo.MongoClient(sys.argv[1])["repro_positional"]["inventory"]
    fresh(collection)
    updated = collection.update_one(QUERY, UPDATE).modified_count
    fresh(collection)
    try:
        found = collection.find_one_and_update(QUERY, UPDATE, return_document=ReturnDocument.AFTER)
        failure = None if found and found["list"][1].get("offer") else "no document updated"
    except pymongo.errors.OperationFailure as error:
        failure = str(error)
    collection.database.client.drop_database("repro_positional")
    if updated == 1 and failure is None:
        print("no bug: update and findAndModify both apply the positional update")
        return 0
    print(f"BUG: update applied {updated}; findAndModify: {failure}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
