# ruff: noqa: RUF001 - non-ASCII look-alikes are the point of these tests
"""Generated log rows, written through the writer's own pieces (normalize_batch, ContainerKeys,
binary COPY, partitions.ensure_day) and seen twice: as stored rows for the SQL, and as the
live-tail fan-out messages (ingest.fanout.build_messages) for the in-memory matcher.
"""

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection

from ingest.fanout import build_messages, container_group
from ingest.normalize import Limits, normalize_batch
from ingest.record import Record
from ingest.store import partitions
from ingest.store.containers import ContainerKeys
from ingest.store.copy import COPY_SQL, encode_rows
from ingest.store.writer import CommittedBatch

# Recent days, so that normalisation keeps the generated timestamps (it replaces implausibly
# old ones); `NOW` anchors since:/until: durations for the SQL and the matcher alike.
DAY0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
DAYS = 3
NOW = DAY0 + timedelta(days=DAYS - 1, hours=18)
HASH_PARTS = 4
TENANTS = ["acme", "beta", "gamma"]
LIMITS = Limits(max_line_bytes=256 * 1024, max_ts_age_ns=30 * 86400 * 10**9)

FRAGMENTS = [
    "error",
    "Error",
    "ERROR:",
    "warn",
    "timeout",
    "timed out",
    "time out",
    "healthcheck ok",
    "GET /api/v1/users?id=7",
    "connection reset by peer",
    "ÄÖÜ äöü",
    "ΣΑΣ σας ΟΔΟΣ",
    "İstanbul",
    "straße STRASSE",
    "日本語のログ",
    "emoji 🎉 party",
    "100% done",
    "under_score",
    "back\\slash",
    "it's",
    'say "hi"',
    "tab\there",
    "a+b=c",
    "[bracket]",
    "$dollar",
    "ſ long s",
    "K kelvin",
    "ǅ titlecase",
    "ﬁ ligature",
    "dot.dot",
    "x/y/z",
    "%_%",
    "\\%",
    "{json: 1}",
    "(paren)",
    "level=info",
    "user 42 logged in",
    "Σ final ΟΔΟΣ.",
    "ıI iİ",
    "two\nlines",
    "ends with s\n",
]
CONTAINERS = [
    # tenant, service, name, image, host, labels
    ("acme", "api", "web-1", "nginx:1.25", "h1", {"com.docker.compose.service": "api", "env": "prod"}),
    ("acme", "api", "web-2", "nginx:alpine", "h2", {"com.docker.compose.service": "api", "env": "dev"}),
    ("acme", "worker", "worker_1", "python:3.11", "h1", {"com.docker.compose.service": "worker"}),
    ("acme", "", "db%1", "postgres:15", "h2", {"weird": "a%b_c\\d", "env": "prod"}),
    ("beta", "api", "web-1", "nginx:1.25", "h1", {"com.docker.compose.service": "api", "env": "prod"}),
    ("beta", "web", "frontend", "node:20", "h3", {"team": "ui", "env": "Prod"}),
    ("beta", "web", "ünïcode-ctr", "my_img%:latest", "h3", {}),
    ("gamma", "batch", "job-7", "busybox", "h1", {"env": "dev", "n": "7"}),
]


@dataclass
class Dataset:
    rows: list[dict] = field(default_factory=list)  # as the live tail sees them
    ckeys: dict[int, str] = field(default_factory=dict)  # container key -> tenant


def random_attrs(rnd: random.Random) -> dict | None:
    if rnd.random() < 0.15:
        return None
    attrs: dict = {}
    choices = {
        "status": lambda: rnd.choice([200, 201, 404, 500, 503]),
        "latency": lambda: rnd.choice([0.1, 0.25, 1.5, 12.0, 1e20, -3.75, 2.5e-7]),
        "user": lambda: {"id": rnd.randint(1, 50), "name": rnd.choice(["ann", "Bob", "çelik", "o'hara"])},
        "tags": lambda: rnd.sample(["a", "b", "c", "%", "_"], rnd.randint(0, 3)),
        "ok": lambda: rnd.choice([True, False]),
        "note": lambda: None,
        "code": lambda: rnd.choice(["500", "E42", "5%", "x_y"]),
        "msg": lambda: rnd.choice(FRAGMENTS),
        "big": lambda: rnd.choice([10**20, -(10**18), 0, 1]),
        # The same "one" in every JSON type: only the matching type may compare equal.
        "flag": lambda: rnd.choice([True, False, 1, 0, 1.0, "1", "true", None, [1], {"1": 1}]),
    }
    for key in rnd.sample(sorted(choices), rnd.randint(0, 5)):
        attrs[key] = choices[key]()
    return attrs


def build(seed: int = 6, rows_per_container: int = 90) -> Dataset:
    rnd = random.Random(seed)
    records = []
    for i, (tenant, service, name, image, host, labels) in enumerate(CONTAINERS):
        cid = f"{i:x}{rnd.getrandbits(252):063x}"[:64]
        for _ in range(rows_per_container):
            ts = DAY0 + timedelta(microseconds=rnd.randrange(DAYS * 86400 * 10**6))
            line = " ".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randint(1, 3)))
            if rnd.random() < 0.6:
                line += f" #{rnd.randint(0, 999)}"
            records.append(
                Record(
                    line=line,
                    ts_ns=int(ts.timestamp()) * 10**9 + ts.microsecond * 1000 + rnd.randrange(1000),
                    tenant=tenant,
                    service=service,
                    container_id=cid,
                    container_name=name,
                    image=image,
                    host=host,
                    stream=rnd.choice(["stdout", "stderr"]),
                    level=rnd.choice([None, None, 0, 2, 3, 4, 5, 6, 7]),  # None: parsed from the line
                    attrs=random_attrs(rnd),
                    labels=labels,
                )
            )
    rnd.shuffle(records)
    batch = normalize_batch(records, LIMITS)
    connection.ensure_connection()
    conn = connection.connection
    with conn.transaction(), conn.cursor() as cur:
        for d in range(DAYS):
            partitions.ensure_day(cur, (DAY0 + timedelta(days=d)).date(), HASH_PARTS)
        # The first day is "sealed" (trigram index), the others are not.
        cur.execute(f"CREATE INDEX ON {partitions.partition_name(DAY0.date())} USING gin (line gin_trgm_ops)")
        ckeys = ContainerKeys().resolve(cur, batch.metas)
        cur.execute("SELECT nextval('logs_id_seq')")
        first_id = cur.fetchone()[0]
        with cur.copy(COPY_SQL) as copy:
            copy.write(encode_rows(batch.rows, ckeys, first_id))
        cur.execute("ANALYZE logs")
    messages = build_messages(CommittedBatch(batch, ckeys, first_id))
    labels_by_key = {(c[0], c[2]): {k: str(v) for k, v in c[5].items()} for c in CONTAINERS}
    data = Dataset()
    for ckey in set(ckeys):
        message = messages[container_group(ckey)]
        container = message["containers"][0]
        data.ckeys[ckey] = container["tenant"]
        labels = labels_by_key[(container["tenant"], container["name"])]
        data.rows += tail_rows(message, labels)
    return data


def tail_rows(message: dict, labels: dict) -> list[dict]:
    """A fan-out message as matcher rows; labels are not in the message and come from `containers`."""
    (container,) = message["containers"]
    rows = []
    for row_id, ts_ns, stream, level, _flags, line, attrs in message["lines"][str(container["ckey"])]:
        rows.append(
            {
                "id": row_id,
                "ts_ns": ts_ns,
                "stream": stream,
                "level": level,
                "line": line,
                "attrs": None if attrs is None else json.loads(attrs),
                "tenant": container["tenant"],
                "service": container["service"],
                "container_id": container["container_id"],
                "container_name": container["name"],
                "image": container["image"],
                "host": container["host"],
                "labels": labels,
            }
        )
    return rows


def remove() -> None:
    with connection.cursor() as cur:
        cur.execute("TRUNCATE logs, log_batches, containers CASCADE")
        for d in range(DAYS):
            partitions.drop_day(cur, (DAY0 + timedelta(days=d)).date())
        cur.execute("DELETE FROM ingest_tenant WHERE slug = ANY(%s)", [TENANTS])
