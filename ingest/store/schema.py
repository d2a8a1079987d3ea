"""DDL of the partitioned `logs` table and the batch ledger (Django does not manage them).

Layout (see docs/decisions/0001-log-partitioning.md): RANGE(ts) by UTC day, each day split by
HASH(ckey). Retention drops whole days; a container-scoped query prunes to one hash bucket.
"""

# ids come from a sequence that hands out blocks: one nextval() reserves ID_BLOCK ids for a
# whole writer batch, so assigning ids costs one round trip per batch, not per row.
ID_BLOCK = 65536

STREAM_CODES = {"stdout": 1, "stderr": 2}
STREAM_NAMES = {1: "stdout", 2: "stderr", 0: "unknown"}

# Statistics target of `line` on every day partition and leaf (the default is 100). The planner
# estimates an ILIKE's selectivity by matching the pattern against the column's histogram when
# it has 100 entries or more: ~0.2 ms per leaf, most of the planning of a trigram search over
# 8 leaves a day, which itself executes in well under that (docs/query-language.md). With 10
# entries it uses its pattern-length estimate instead; the walk's windows, not that estimate,
# decide how much a common term reads.
LINE_STATISTICS = 10

FLAG_TRUNCATED = 1
FLAG_INVALID_UTF8 = 2
FLAG_NUL_ESCAPED = 4

# Columns in COPY order.
LOG_COLUMNS = ("ckey", "id", "ts", "ts_ns", "received_at", "stream", "level", "flags", "line", "attrs", "raw")

# Column definitions, shared with bench/layouts.py so the layouts it compares hold the same rows.
LOGS_COLUMNS_DDL = """
    ckey        bigint      NOT NULL,
    id          bigint      NOT NULL,
    ts          timestamptz NOT NULL,
    ts_ns       smallint    NOT NULL DEFAULT 0,
    received_at timestamptz NOT NULL,
    stream      smallint    NOT NULL,
    level       smallint,
    flags       smallint    NOT NULL DEFAULT 0,
    line        text        NOT NULL,
    attrs       jsonb,
    raw         bytea
"""

CREATE_LOGS = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE SEQUENCE IF NOT EXISTS logs_id_seq INCREMENT BY {ID_BLOCK} MINVALUE 1 START WITH 1;
CREATE TABLE IF NOT EXISTS logs ({LOGS_COLUMNS_DDL}) PARTITION BY RANGE (ts);
CREATE TABLE IF NOT EXISTS log_partitions (
    name        text PRIMARY KEY,
    day         date NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sealed_at   timestamptz
);
CREATE TABLE IF NOT EXISTS log_batches (
    id           bigserial PRIMARY KEY,
    writer       text        NOT NULL,
    xid          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    committed_at timestamptz NOT NULL DEFAULT now(),
    first_id     bigint      NOT NULL,
    last_id      bigint      NOT NULL,
    rows         integer     NOT NULL,
    ts_min       timestamptz NOT NULL,
    ts_max       timestamptz NOT NULL,
    spool_ref    text UNIQUE
);
CREATE INDEX IF NOT EXISTS log_batches_xid ON log_batches (xid);
"""

DROP_LOGS = """
DROP TABLE IF EXISTS logs CASCADE;
DROP TABLE IF EXISTS log_partitions;
DROP TABLE IF EXISTS log_batches;
DROP SEQUENCE IF EXISTS logs_id_seq;
"""
