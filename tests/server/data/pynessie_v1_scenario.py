"""A pynessie (Nessie API v1) session, run in pynessie's own venv against one server.

    python pynessie_v1_scenario.py http://HOST:PORT/api/v1 SUFFIX

Prints a JSON transcript: one ``[step, value]`` per step, with commit hashes and content
ids replaced by labels in the order they first appear (``H1``, ``C1`` …), so that the
transcripts of two servers compare equal when they behave alike. Works only on its own
branches (named with SUFFIX, the first one created empty) so that a shared server's
other references and main's contents do not matter, and deletes them at the end.
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any

from pynessie import init
from pynessie.error import NessieException
from pynessie.model import ContentKey, Delete, IcebergTable, Namespace, Put

NO_ANCESTOR = "2e1cfa82b035c26cbbbdae632cea070514eb8b773f616aaeaf668e2f0be8f10d"
endpoint, suffix = sys.argv[1], sys.argv[2]
client = init(config_dict={"endpoint": endpoint, "verify": True, "default_branch": "main"})
labels: dict[str, str] = {}
steps: list[list[Any]] = []


def label(value: str | None, prefix: str) -> str | None:
    if value is None:
        return None
    if value not in labels:
        labels[value] = f"{prefix}{sum(v.startswith(prefix) for v in labels.values()) + 1}"
    return labels[value]


def record(step: str, value: Any) -> None:
    steps.append([step, value])


def failure(step: str, call: Any) -> None:
    """Record the exception class and status a failing call raises (or that it did not)."""
    try:
        call()
    except NessieException as exc:
        record(step, [type(exc).__name__, exc.status_code])
    else:
        record(step, "no error")


def table(snapshot: int, content_id: str | None = None) -> IcebergTable:
    location = f"s3://warehouse/ns/t/metadata/v{snapshot}.metadata.json"
    return IcebergTable(content_id, location, snapshot, 0, 0, 0)


t_key = ContentKey(["ns", "t"])
work, dev, pick, tag = (f"pyn{suffix}", f"pyn{suffix}-dev", f"pyn{suffix}-pick", f"pyn{suffix}-t")

record("default branch", client.get_default_branch())
record("main listed", "main" in [r.name for r in client.list_references().references])
main_hash = client.get_reference("main").hash_
# Nessie's "no ancestor" hash (the beginning of time, on every branch): the work branch
# starts empty whatever main holds on a shared server
created = client.create_branch(work, "main", NO_ANCESTOR)
record("create branch", [type(created).__name__, created.name == work, label(created.hash_, "H")])

namespace = Namespace(None, ["ns"])
committed = client.commit(
    work,
    created.hash_,
    "add ns.t",
    "ann",
    Put(ContentKey(["ns"]), namespace),
    Put(t_key, table(1)),
)
first = committed.hash_
record("commit", [committed.name == work, label(first, "H")])
content = client.get_content(work, t_key)
record("content", [label(content.id, "C"), content.snapshot_id, content.metadata_location])
keys = client.list_keys(work)
record("keys", sorted([e.name.elements, e.kind] for e in keys.entries))
log = list(itertools.islice(client.get_log(work), 1))
record(
    "log",
    [[label(e.commit_meta.hash_, "H"), e.commit_meta.message, e.commit_meta.author] for e in log],
)

branch = client.create_branch(dev, work, first)
updated = client.commit(dev, branch.hash_, "snapshot 2", None, Put(t_key, table(2, content.id)))
record("commit on dev", label(updated.hash_, "H"))
diff = client.get_diff(work, dev)
record(
    "diff",
    [
        [d.content_key.elements, d.from_content.snapshot_id, d.to_content.snapshot_id]
        for d in diff.diffs
    ],
)
merged = client.merge(dev, work, updated.hash_, first)
record("merge", [merged.was_applied, merged.was_successful, len(merged.details)])
record("content after merge", client.get_content(work, t_key).snapshot_id)

picked = client.create_branch(pick, work, first)
transplanted = client.cherry_pick(pick, dev, picked.hash_, updated.hash_)
record("cherry-pick", [transplanted.was_applied, transplanted.was_successful])
record("content after cherry-pick", client.get_content(pick, t_key).snapshot_id)

made = client.create_tag(tag, work, first)
record("tag", [type(made).__name__, label(made.hash_, "H")])
record("content at tag", client.get_content(tag, t_key).snapshot_id)
record("content at hash", client.get_content(work, t_key, first).snapshot_id)

failure("unknown reference", lambda: client.get_reference(f"nope{suffix}"))
failure("unknown key", lambda: client.get_content(work, ContentKey(["ns", "nope"])))
failure("existing branch", lambda: client.create_branch(work, "main", main_hash))
failure(
    "stale commit",
    lambda: client.commit(work, first, "stale", None, Put(t_key, table(3, content.id))),
)
failure("delete at stale hash", lambda: client.delete_branch(dev, first))

head = client.get_reference(work).hash_
cleaned = client.commit(work, head, "drop", None, Delete(t_key))
record("delete table", label(cleaned.hash_, "H") is not None)
failure("content after delete", lambda: client.get_content(work, t_key))
client.delete_tag(tag, made.hash_)
for name in (work, dev, pick):
    client.delete_branch(name, client.get_reference(name).hash_)
failure("deleted branch", lambda: client.get_reference(work))
print(json.dumps(steps))
