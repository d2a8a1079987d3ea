# ruff: noqa: RUF001 - non-ASCII look-alikes are the point of these tests
"""Generated log rows, stored twice: in Postgres (containers + a partitioned `logs`) and as
Python dicts for the in-memory matcher, so the two can be compared row for row.

The `logs` DDL follows the schema described for the writer (RANGE(ts) daily, each part
HASH(ckey)); it is created here only until ingest's own schema helper exists.
"""

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection

from ingest.models import Container, Driver, Tenant

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 3
NOW = DAY0 + timedelta(days=DAYS - 1, hours=18)
HASH_PARTS = 4
TENANTS = ["acme", "beta", "gamma"]

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
    rows: list[dict] = field(default_factory=list)
    ckeys: dict[int, dict] = field(default_factory=dict)


def ensure_ingest_tables() -> list:
    """Creates the ingest models' tables when no migration has (yet) done it; returns them."""
    existing = set(connection.introspection.table_names())
    created = []
    with connection.schema_editor() as editor:
        for model in (Tenant, Driver, Container):
            if model._meta.db_table not in existing:
                editor.create_model(model)
                created.append(model)
    return created


def create_logs_table() -> None:
    with connection.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cur.execute(
            """CREATE TABLE logs (
                 ckey bigint NOT NULL, id bigint NOT NULL, ts timestamptz NOT NULL,
                 ts_ns smallint NOT NULL DEFAULT 0, received_at timestamptz NOT NULL,
                 stream smallint NOT NULL, level smallint, flags smallint NOT NULL DEFAULT 0,
                 line text NOT NULL, attrs jsonb, raw bytea
               ) PARTITION BY RANGE (ts)"""
        )
        for d in range(DAYS):
            day = DAY0 + timedelta(days=d)
            name = f"logs_p{day:%Y%m%d}"
            cur.execute(
                f"CREATE TABLE {name} PARTITION OF logs"
                " FOR VALUES FROM (%s) TO (%s) PARTITION BY HASH (ckey)",
                [day, day + timedelta(days=1)],
            )
            for h in range(HASH_PARTS):
                cur.execute(
                    f"CREATE TABLE {name}_h{h} PARTITION OF {name} "
                    f"FOR VALUES WITH (MODULUS {HASH_PARTS}, REMAINDER {h})"
                )
        cur.execute("CREATE INDEX ON logs (ckey, ts, id)")
        # The first day is "sealed": it gets the trigram index, the others do not.
        cur.execute(f"CREATE INDEX ON logs_p{DAY0:%Y%m%d} USING gin (line gin_trgm_ops)")


def drop_logs_table() -> None:
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS logs")


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
    data = Dataset()
    for i, (tenant, service, name, image, host, labels) in enumerate(CONTAINERS):
        cid = f"{i:x}{rnd.getrandbits(252):063x}"[:64]
        c = Container.objects.create(
            tenant=tenant,
            service=service,
            container_id=cid,
            name=name,
            image=image,
            host=host,
            labels=labels,
            first_seen=DAY0,
            last_seen=NOW,
        )
        data.ckeys[c.id] = {
            "tenant": tenant,
            "service": service,
            "container_id": cid,
            "container_name": name,
            "image": image,
            "host": host,
            "labels": labels,
        }
    next_id = 1
    inserts = []
    for ckey, meta in data.ckeys.items():
        for _ in range(rows_per_container):
            ts = DAY0 + timedelta(microseconds=rnd.randrange(DAYS * 86400 * 10**6))
            line = " ".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randint(1, 3)))
            if rnd.random() < 0.6:
                line += f" #{rnd.randint(0, 999)}"
            row = dict(
                meta,
                ckey=ckey,
                id=next_id,
                ts=ts,
                line=line,
                stream=rnd.choice(["stdout", "stderr"]),
                level=rnd.choice([None, 0, 2, 3, 4, 4, 5, 6, 6, 7]),
                attrs=random_attrs(rnd),
            )
            next_id += 1
            data.rows.append(row)
            inserts.append(
                [
                    ckey,
                    row["id"],
                    ts,
                    ts,
                    1 if row["stream"] == "stdout" else 2,
                    row["level"],
                    line,
                    None if row["attrs"] is None else json.dumps(row["attrs"]),
                ]
            )
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO logs (ckey, id, ts, received_at, stream, level, line, attrs)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
            inserts,
        )
        cur.execute("ANALYZE logs")
    return data


def remove(created_models: list) -> None:
    drop_logs_table()
    Container.objects.all().delete()
    with connection.schema_editor() as editor:
        for model in reversed(created_models):
            editor.delete_model(model)
