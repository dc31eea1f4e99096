"""Kafka CDC benchmark: sustained events/s into silver and event-to-queryable latency.

Needs the broker of ``scripts/services/kafka.sh`` (``LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS``,
default ``127.0.0.1:19092``). Run from the repository root::

    .venv/bin/python bench/cdc.py [--rates 1000,10000] [--seconds 15] [--keys 5000]

For each offered load, a producer thread sends Debezium-format change events
(inserts, updates, deletes over ``--keys`` keys; each ``after`` image carries its
sequence number) to a fresh one-partition topic at that rate for ``--seconds``, while
:func:`lakehouse.ingest.kafka.consume_cdc` applies them to ``silver.bench`` in an
embedded lakehouse and a query thread scans silver on ``main`` every 50 ms for rows newer
than it has seen. Reported:

* **sustained events/s into silver**: events / (last event queryable - first produced);
* **latency p50/p95**: produce time → the first query on ``main`` that sees the event
  (an event counts as seen when a row of the same or a later sequence number is visible:
  one partition, so commits are in sequence order);
* **baseline**: the raw consume rate of the same events (consume + parse, no writes) in
  the same run, and the ratio silver / raw.

``--catch-up N`` measures the apply path alone instead: ``N`` events are produced first,
then :func:`consume_cdc` works through the backlog (no producer or query thread competing
for the interpreter), against the raw consume rate of the same topic; ``--rounds`` repeats
both, interleaved, and medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import lakehouse
from lakehouse.ingest.kafka import KafkaCdcSource, Record, consume_cdc, parse_event


def make_events(n: int, keys: int, seed: int = 1) -> list[tuple[int, dict[str, Any]]]:
    """``n`` change events over ``keys`` keys: (key, payload without ts_ms)."""
    rnd = random.Random(seed)
    rows: dict[int, dict[str, Any]] = {}
    out = []
    for seq in range(n):
        key = rnd.randint(1, keys)
        row = rows.get(key)
        lsn = 1000 + 8 * seq
        source = {"connector": "postgresql", "lsn": lsn, "sequence": f'["{lsn - 4}","{lsn}"]'}
        if row is None:
            after = {"id": key, "seq": seq, "amount": seq * 0.5, "status": "new"}
            rows[key] = after
            out.append((key, {"op": "c", "before": None, "after": after, "source": source}))
        elif rnd.random() < 0.1:
            del rows[key]
            before = {**row, "seq": seq}
            out.append((key, {"op": "d", "before": before, "after": None, "source": source}))
        else:
            after = {**row, "seq": seq, "amount": row["amount"] + 1, "status": "paid"}
            rows[key] = after
            out.append((key, {"op": "u", "before": row, "after": after, "source": source}))
    return out


def create_topic(bootstrap: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"bench-cdc-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    [future] = admin.create_topics([NewTopic(name, 1, 1)]).values()
    future.result(30)
    return name


def delete_topic(bootstrap: str, name: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([name]).values():
        future.result(30)


def produce_at(
    bootstrap: str,
    topic: str,
    events: list[tuple[int, dict[str, Any]]],
    rate: float,
    sent: list[float],
) -> None:
    """Send ``events`` at ``rate`` per second, recording each one's produce time."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    start = time.time()
    for n, (key, payload) in enumerate(events):
        due = start + n / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        now = time.time()
        payload["ts_ms"] = int(now * 1000)
        sent.append(now)
        producer.produce(
            topic, value=json.dumps(payload).encode(), key=json.dumps({"id": key}).encode()
        )
        if n % 500 == 0:
            producer.poll(0)
    producer.flush(60)


def raw_consume_rate(bootstrap: str, topic: str, n: int) -> float:
    """Events/s of consuming and parsing the topic's ``n`` events, writing nothing."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-raw", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = 0
    start = 0.0  # from the first record: connection set-up is not consumption
    while got < n:
        for msg in consumer.consume(num_messages=10_000, timeout=1.0):
            if msg.error():
                continue
            if not got:
                start = time.perf_counter()
            parse_event(Record(topic, 0, msg.offset(), msg.value(), msg.key()))
            got += 1
    elapsed = time.perf_counter() - start
    consumer.close()
    return got / elapsed


def run_rate(bootstrap: str, rate: int, seconds: float, keys: int) -> dict[str, Any]:
    from pyiceberg.expressions import GreaterThan

    n = int(rate * seconds)
    events = make_events(n, keys)
    topic = create_topic(bootstrap)
    sent: list[float] = []
    seen_at: list[float] = [0.0] * n
    with tempfile.TemporaryDirectory(prefix="bench-cdc-") as home:
        lh = lakehouse.connect(Path(home), create=True)
        source = KafkaCdcSource(
            topics=[topic],
            table="silver.bench",
            key=["id"],
            batch_size=20_000,
            batch_timeout=0.5,
            bootstrap_servers=bootstrap,
        )
        done = threading.Event()
        result: dict[str, Any] = {}

        def consume() -> None:
            result["r"] = consume_cdc(lh, source, idle_timeout=5.0, stop=done)

        def query() -> None:
            last = -1
            reader = lakehouse.connect(Path(home))
            while last < n - 1 and not done.is_set():
                try:
                    table = reader.table("silver.bench", "main")
                    rows = table.scan(
                        row_filter=GreaterThan("seq", last), selected_fields=("seq",)
                    ).to_arrow()
                except Exception:  # not created yet
                    rows = None
                now = time.time()
                if rows is not None and rows.num_rows:
                    top = max(rows.column("seq").to_pylist())
                    for s in range(last + 1, top + 1):
                        seen_at[s] = now
                    last = top
                time.sleep(0.05)
            # deletes at the very end leave no row behind: the consumer's finish sees them
            reader.close()

        producer = threading.Thread(target=produce_at, args=(bootstrap, topic, events, rate, sent))
        consumer = threading.Thread(target=consume)
        poller = threading.Thread(target=query)
        started = time.time()
        consumer.start()
        poller.start()
        producer.start()
        producer.join()
        poller.join(timeout=seconds * 20 + 120)
        done.set()
        consumer.join()
        lh.close()
    seen = [(s, seen_at[s] - sent[s]) for s in range(n) if seen_at[s]]
    latencies = sorted(lat for _, lat in seen)
    last_visible = max(seen_at)
    summary = result["r"]
    silver_rate = summary.changes / (last_visible - sent[0]) if last_visible else 0.0
    raw_rate = raw_consume_rate(bootstrap, topic, n)
    delete_topic(bootstrap, topic)
    return {
        "offered": rate,
        "events": n,
        "batches": summary.batches,
        "silver_rate": silver_rate,
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "raw_rate": raw_rate,
        "ratio": silver_rate / raw_rate,
        "wall": time.time() - started,
    }


def catch_up(bootstrap: str, n: int, keys: int) -> dict[str, Any]:
    """Events/s of ``consume_cdc`` over a backlog of ``n`` events, and raw consume/s."""
    from confluent_kafka import Producer

    topic = create_topic(bootstrap)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, (key, payload) in enumerate(make_events(n, keys)):
        payload["ts_ms"] = int(time.time() * 1000)
        producer.produce(
            topic, value=json.dumps(payload).encode(), key=json.dumps({"id": key}).encode()
        )
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    with tempfile.TemporaryDirectory(prefix="bench-cdc-") as home:
        lh = lakehouse.connect(Path(home), create=True)
        source = KafkaCdcSource(
            topics=[topic],
            table="silver.bench",
            key=["id"],
            batch_size=20_000,
            batch_timeout=0.5,
            bootstrap_servers=bootstrap,
        )
        stop = threading.Event()
        seen = [0]

        def on_batch(batch: Any) -> None:
            seen[0] += batch.records
            if seen[0] >= n:
                stop.set()

        start = time.perf_counter()
        result = consume_cdc(lh, source, stop=stop, on_batch=on_batch)
        elapsed = time.perf_counter() - start
        lh.close()
    raw = raw_consume_rate(bootstrap, topic, n)
    delete_topic(bootstrap, topic)
    return {"rate": result.records / elapsed, "batches": result.batches, "raw": raw}


def main_catch_up(bootstrap: str, n: int, keys: int, rounds: int) -> int:
    print(f"{'round':>6} {'events':>8} {'batches':>8} {'silver ev/s':>12} {'raw ev/s':>10} ratio")
    got = []
    for i in range(rounds):
        r = catch_up(bootstrap, n, keys)
        got.append(r)
        print(
            f"{i:>6} {n:>8,} {r['batches']:>8} {r['rate']:>12,.0f} {r['raw']:>10,.0f} "
            f"{r['rate'] / r['raw']:.3f}",
            flush=True,
        )
    rate = statistics.median(r["rate"] for r in got)
    raw = statistics.median(r["raw"] for r in got)
    print(f"median {n:>8,} {'':>8} {rate:>12,.0f} {raw:>10,.0f} {rate / raw:.3f}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,10000", help="offered loads, events/s")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of produce per load")
    parser.add_argument("--keys", type=int, default=5000, help="distinct primary keys")
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:19092"),
    )
    parser.add_argument("--catch-up", type=int, default=0, help="backlog size (apply path only)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --catch-up")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), broker {args.bootstrap}")
    if args.catch_up:
        return main_catch_up(args.bootstrap, args.catch_up, args.keys, args.rounds)
    print(
        f"{'offered/s':>10} {'events':>8} {'batches':>8} {'silver ev/s':>12} {'p50 s':>7} "
        f"{'p95 s':>7} {'raw ev/s':>10} {'silver/raw':>10}"
    )
    for rate in (int(r) for r in args.rates.split(",")):
        r = run_rate(args.bootstrap, rate, args.seconds, args.keys)
        print(
            f"{r['offered']:>10,} {r['events']:>8,} {r['batches']:>8} {r['silver_rate']:>12,.0f} "
            f"{r['p50']:>7.2f} {r['p95']:>7.2f} {r['raw_rate']:>10,.0f} {r['ratio']:>10.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
