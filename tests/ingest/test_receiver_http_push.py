"""HTTP push receiver: a real `manage.py ingest` on the test database, answered over real HTTP.

One ingest process serves the whole module (two drivers: one bound to tenant-a, one unbound);
each test uses its own container ids. The decoder itself gets hypothesis tests at the end.
"""

import gzip
import json
import math
import time
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.levels import SEVERITY_BY_NAME
from ingest.models import Container, Tenant
from ingest.receivers.base import DriverConfig
from ingest.receivers.http_push import BadRecord, decode_body, record_from_object
from ingest.record import Record
from ingest.store.schema import FLAG_INVALID_UTF8, FLAG_NUL_ESCAPED, FLAG_TRUNCATED
from tests.base import make_driver
from tests.conftest import decoded_log_rows as log_rows
from tests.support.private_postgres import free_port
from tests.support.processes import IngestProcess
from tests.support.shared import unique

# Each test in a plain transaction (rolled back, nothing flushed): the shared drivers survive,
# and pytest-django creates the test database even when only these tests are selected.
pytestmark = pytest.mark.django_db

MAX_BODY = 1024 * 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Pusher:
    def __init__(self, url: str, token: str):
        self.url = url
        self.token = token

    def __call__(self, body: bytes, token: str | None = None, **headers) -> requests.Response:
        auth = {"Authorization": f"Bearer {self.token if token is None else token}"}
        return requests.post(self.url, data=body, headers={**auth, **headers}, timeout=60)

    def records(self, *records: dict) -> requests.Response:
        return self("\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode())


@pytest.fixture(scope="module")
def drivers(module_db, tmp_path_factory):
    tenant_a = Tenant.objects.create(slug="tenant-a", name="Tenant A")
    Tenant.objects.create(slug="tenant-b", name="Tenant B")
    ports = [free_port(), free_port()]
    bound, bound_token = make_driver("http", f"127.0.0.1:{ports[0]}", tenant=tenant_a)
    open_, open_token = make_driver("http", f"127.0.0.1:{ports[1]}")
    proc = IngestProcess(tmp_path_factory.mktemp("http-ingest"), LOGSITE_MAX_BODY_BYTES=MAX_BODY)
    proc.start(wait_for_drivers=[bound.id, open_.id])
    yield {
        "proc": proc,
        "bound": Pusher(f"http://127.0.0.1:{ports[0]}/api/v1/push", bound_token),
        "open": Pusher(f"http://127.0.0.1:{ports[1]}/api/v1/push", open_token),
        "bound_id": bound.id,
    }
    assert proc.stop() == 0


@pytest.fixture
def push(drivers):
    return drivers["bound"]


def rows_of(cid: str) -> list[dict]:
    return log_rows("c.container_id = %s", (cid,))


def assert_nothing_stored(push, cid: str) -> None:
    """A later acknowledged push is committed after anything accepted before it, so once it is
    visible, an earlier refused push that had been stored would be visible too."""
    marker = unique("marker")
    assert push.records({"line": "marker", "container_id": marker}).status_code == 200
    assert [r["line"] for r in rows_of(marker)] == ["marker"]
    assert rows_of(cid) == []


def stored_ts_ns(row: dict) -> int:
    return (row["ts"] - EPOCH) // timedelta(microseconds=1) * 1000 + row["ts_ns"]


# --- happy paths --------------------------------------------------------------------------------
def test_it_stores_ndjson_before_answering(push):
    cid = unique()
    body = "\n".join(
        json.dumps({"line": f"line {i}", "container_id": cid, "container_name": "/web-1", "stream": "stderr"})
        for i in range(100)
    ).encode()
    response = push(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 100}
    rows = rows_of(cid)  # no waiting: 200 means committed
    assert [r["line"] for r in rows] == [f"line {i}" for i in range(100)]
    assert {(r["tenant"], r["name"], r["stream"]) for r in rows} == {("tenant-a", "web-1", 2)}


def test_it_accepts_a_json_array(push):
    cid = unique()
    body = json.dumps([{"line": f"a{i}", "container_id": cid} for i in range(5)], indent=2).encode()
    response = push(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 5}
    assert [r["line"] for r in rows_of(cid)] == [f"a{i}" for i in range(5)]


def test_it_accepts_blank_lines_and_an_empty_body(push):
    cid = unique()
    body = b"\n\n" + json.dumps({"line": "x", "container_id": cid}).encode() + b"\r\n  \n"
    assert push(body).json() == {"accepted": 1}
    assert push(b"").json() == {"accepted": 0}


def test_it_accepts_a_gzip_body(push):
    cid = unique()
    body = "\n".join(json.dumps({"line": f"g{i}", "container_id": cid}) for i in range(50)).encode()
    response = push(gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert [r["line"] for r in rows_of(cid)] == [f"g{i}" for i in range(50)]


def test_it_reads_every_member_of_a_multi_member_gzip_body(push):
    # Concatenated gzip members are one valid gzip stream (RFC 1952; `cat a.gz b.gz`, pigz).
    cid = unique()
    first = "\n".join(json.dumps({"line": f"m{i}", "container_id": cid}) for i in range(3)) + "\n"
    second = "\n".join(json.dumps({"line": f"m{i}", "container_id": cid}) for i in range(3, 6))
    body = gzip.compress(first.encode()) + gzip.compress(second.encode())
    response = push(body, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 6}
    assert [r["line"] for r in rows_of(cid)] == [f"m{i}" for i in range(6)]


def test_it_accepts_a_deflate_body(push):
    cid = unique()
    body = zlib.compress(json.dumps({"line": "d", "container_id": cid}).encode())
    assert push(body, **{"Content-Encoding": "deflate"}).status_code == 200
    assert [r["line"] for r in rows_of(cid)] == ["d"]


def test_it_maps_every_field(push):
    cid = unique()
    base_ns = (time.time_ns() // 10**9 - 3600) * 10**9
    local = datetime.fromtimestamp(base_ns // 10**9, timezone(timedelta(hours=5, minutes=30)))
    records = [
        {
            "line": "rfc3339 with an offset and nanoseconds",
            "ts": local.strftime("%Y-%m-%dT%H:%M:%S") + ".123456789+05:30",
            "level": "warning",
            "container_id": cid,
            "container_name": "/api-1",
            "image": "registry/api:1.2",
            "host": "node-7",
            "service": "api",
            "stream": "stderr",
            "labels": {"com.docker.compose.service": "api", "team": "core"},
            "attrs": {"request_id": "r-1", "n": 3, "nested": {"ok": True}},
        },
        {"line": "unix seconds", "ts": base_ns / 10**9 + 0.5, "level": 3, "container_id": cid},
        {"line": "unix seconds in 1970", "ts": 1, "container_id": cid},
        {"line": "integer ns", "ts_ns": base_ns + 7, "level": "DEBUG", "container_id": cid},
        {"line": "ERROR parsed from the line", "container_id": cid},
    ]
    response = push.records(*records)
    assert response.status_code == 200, response.text
    rows = rows_of(cid)
    assert [r["line"] for r in rows] == [r["line"] for r in records]
    first = rows[0]
    assert stored_ts_ns(first) == base_ns + 123_456_789
    assert first["level"] == 4
    assert first["stream"] == 2
    assert first["attrs"] == {"request_id": "r-1", "n": 3, "nested": {"ok": True}}
    assert (first["tenant"], first["name"], first["service"]) == ("tenant-a", "api-1", "api")
    assert stored_ts_ns(rows[1]) == base_ns + 500_000_000
    assert rows[1]["level"] == 3
    # 1970 is far outside the plausible window: receive time is used, the original kept.
    assert rows[2]["attrs"] == {"_driver_ts_ns": 10**9}
    assert stored_ts_ns(rows[3]) == base_ns + 7
    assert rows[3]["level"] == 7
    assert rows[4]["level"] == 3
    container = Container.objects.get(container_id=cid)
    assert container.labels == {"com.docker.compose.service": "api", "team": "core"}
    assert (container.image, container.host) == ("registry/api:1.2", "node-7")


def test_it_keeps_a_valid_but_absurd_time_aside(push):
    cid = unique()
    response = push.records({"line": "x", "ts": "9999-12-31T23:59:59-23:59", "container_id": cid})
    assert response.status_code == 200, response.text
    [row] = rows_of(cid)
    assert row["attrs"] == {"_driver_ts_ns": 253_402_387_139 * 10**9}


def test_it_stores_nul_and_lone_surrogates_from_json(push):
    cid = unique()
    # json.dumps would escape the backslashes: write the escapes as a sender's JSON has them.
    body = "\n".join(
        f'{{"line": "{escaped}", "container_id": "{cid}"}}' for escaped in ("a\\u0000b", "x\\ud800y")
    ).encode()
    assert push(body).status_code == 200
    nul, surrogate = rows_of(cid)
    assert (nul["line"], nul["flags"], bytes(nul["raw"])) == ("a\u2400b", FLAG_NUL_ESCAPED, b"a\x00b")
    assert surrogate["flags"] == FLAG_INVALID_UTF8
    assert surrogate["line"].startswith("x")


def test_it_truncates_a_long_line_instead_of_refusing_it(push):
    cid = unique()
    line = "é" * 200_000  # 400 000 bytes, over the 256 KiB line cap but within the body cap
    assert push.records({"line": line, "container_id": cid}).status_code == 200
    [row] = rows_of(cid)
    assert row["flags"] == FLAG_TRUNCATED
    assert row["line"] == "é" * (256 * 1024 // 2)
    assert row["attrs"] == {"_truncated_from_bytes": 400_000}


# --- refusals -------------------------------------------------------------------------------------
def test_it_refuses_a_wrong_or_missing_token(push):
    cid = unique()
    body = json.dumps({"line": "x", "container_id": cid}).encode()
    assert push(body, token="wrong").status_code == 401
    assert requests.post(push.url, data=body, timeout=30).status_code == 401
    assert push(body, token="").status_code == 401
    assert_nothing_stored(push, cid)


def test_it_refuses_the_other_drivers_token(drivers):
    cid = unique()
    body = json.dumps({"line": "x", "container_id": cid}).encode()
    assert drivers["bound"](body, token=drivers["open"].token).status_code == 401
    assert_nothing_stored(drivers["bound"], cid)


def test_it_names_the_bad_line(push):
    cid = unique()
    body = (
        json.dumps({"line": "ok", "container_id": cid})
        + "\n\n"
        + '{"line": "ok"}\n{"line": 5}\n{"line": "never"}'
    ).encode()
    response = push(body)
    assert response.status_code == 400
    assert response.json()["line"] == 4
    assert "line" in response.json()["error"]
    assert_nothing_stored(push, cid)


def test_it_names_the_line_of_a_json_syntax_error(push):
    cid = unique()
    good = json.dumps({"line": "ok", "container_id": cid})
    response = push(f'{good}\n{good}\n{{"line": "unterminated}}\n{good}'.encode())
    assert response.status_code == 400
    assert response.json()["line"] == 3
    assert "invalid JSON" in response.json()["error"]
    array = '[\n  {"line": "a"},\n  {"line": "b"}\n  {"line": "c"}\n]'
    response = push(array.encode())
    assert response.status_code == 400
    assert response.json()["line"] == 4
    assert_nothing_stored(push, cid)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"line": "x", "level": "loud"}, "level"),
        ({"line": "x", "level": 8}, "level"),
        ({"line": "x", "stream": "stdin"}, "stream"),
        ({"line": "x", "ts": "yesterday"}, "ts"),
        ({"line": "x", "ts": 1e300}, "ts"),
        ({"line": "x", "ts_ns": "soon"}, "ts_ns"),
        ({"line": "x", "labels": {"a": 1}}, "labels"),
        ({"line": "x", "labels": ["a"]}, "labels"),
        ({"line": "x", "attrs": "flat"}, "attrs"),
        ({"line": "x", "image": 5}, "image"),
        ({"line": ["x"]}, "line"),
        ({"msg": "no line"}, "line"),
    ],
)
def test_it_refuses_a_bad_field_with_its_reason(push, record, reason):
    cid = unique()
    response = push.records({"line": "ok", "container_id": cid}, {**record, "container_id": cid})
    assert response.status_code == 400, response.text
    assert response.json()["line"] == 2
    assert reason in response.json()["error"]
    assert_nothing_stored(push, cid)


@pytest.mark.parametrize(
    "body",
    [
        b'{"line": "x", "attrs": {"v": NaN}}',
        b'{"line": "x", "attrs": {"v": Infinity}}',
        b'{"line": "x", "attrs": {"v": 1e999}}',
        b'{"line": "x", "ts_ns": 1e999}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"line": "x", "attrs": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
        b'{"line": "caf\xe9"}',
        b"\xef\xbb\xbf\xff\xfe",
    ],
    ids=[
        "nan",
        "infinity",
        "overflowing-number",
        "overflowing-ts-ns",
        "deep-array",
        "deep-object",
        "latin-1",
        "junk",
    ],
)
def test_it_answers_400_to_json_it_cannot_take(push, body):
    response = push(body)
    assert response.status_code == 400, response.text
    assert response.json()["line"] == 1


def test_it_refuses_a_body_over_the_cap(push):
    cid = unique()
    line = json.dumps({"line": "x" * 1000, "container_id": cid}).encode()
    body = b"\n".join([line] * (MAX_BODY // len(line) + 1))
    assert push(body).status_code == 413
    # Without a Content-Length the cap applies while the body streams in.
    assert push(iter([body[i : i + 65536] for i in range(0, len(body), 65536)])).status_code == 413
    assert_nothing_stored(push, cid)


def test_it_refuses_a_gzip_bomb(push):
    bomb = gzip.compress(b"\n" * (64 * 1024 * 1024))
    response = push(bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_it_refuses_a_truncated_gzip_body(push):
    cid = unique()
    body = "\n".join(json.dumps({"line": f"t{i}", "container_id": cid}) for i in range(200)).encode()
    compressed = gzip.compress(body)
    response = push(compressed[: len(compressed) // 2], **{"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert "gzip" in response.json()["error"]
    assert_nothing_stored(push, cid)


def test_it_refuses_an_unknown_content_encoding(push):
    response = push(b'{"line": "x"}', **{"Content-Encoding": "br"})
    assert response.status_code == 400
    assert "Content-Encoding" in response.json()["error"]


def stats_after(proc, moment: float) -> dict:
    """The first stats snapshot taken after `moment` (snapshots are published every 2 s)."""
    return proc.wait_stats(lambda s: s["at"] > moment)


def test_it_counts_malformed_requests(drivers):
    proc, key = drivers["proc"], str(drivers["bound_id"])
    before = stats_after(proc, time.time())["drivers"][key]["malformed"]
    assert drivers["bound"](b"{not json").status_code == 400
    assert drivers["bound"](b'{"nope": 1}').status_code == 400
    assert drivers["bound"](b"{}", **{"Content-Encoding": "gzip"}).status_code == 400
    assert stats_after(proc, time.time())["drivers"][key]["malformed"] == before + 3


# --- tenants ----------------------------------------------------------------------------------------
def test_it_binds_lines_to_the_drivers_tenant(drivers):
    push = drivers["bound"]
    cid = unique()
    response = push.records({"line": "mine", "container_id": cid, "tenant": "tenant-a"})
    assert response.status_code == 200
    response = push.records(
        {"line": "ok", "container_id": cid}, {"line": "theirs", "container_id": cid, "tenant": "tenant-b"}
    )
    assert response.status_code == 400
    assert response.json()["line"] == 2
    assert "tenant" in response.json()["error"]
    assert [(r["line"], r["tenant"]) for r in rows_of(cid)] == [("mine", "tenant-a")]


def test_it_takes_the_tenant_from_records_on_an_unbound_driver(drivers):
    push = drivers["open"]
    cid = unique()
    response = push.records(
        {"line": "for a", "container_id": cid, "tenant": "tenant-a"},
        {"line": "for b", "container_id": cid, "tenant": "tenant-b"},
    )
    assert response.status_code == 200, response.text
    assert sorted((r["tenant"], r["line"]) for r in rows_of(cid)) == [
        ("tenant-a", "for a"),
        ("tenant-b", "for b"),
    ]
    response = push.records({"line": "whose?", "container_id": cid})
    assert response.status_code == 400
    assert "tenant" in response.json()["error"]


# --- the decoder, property-based ------------------------------------------------------------------
DRIVER = DriverConfig(id=9, name="d", kind="http", bind=":1", tenant="t", token_hash="")
NOW = 1_767_225_600 * 10**9

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
MAX_NS = 253_402_300_799 * 10**9  # 9999-12-31T23:59:59Z


@st.composite
def rfc3339(draw) -> tuple[str, int]:
    """An RFC 3339 time with 0-9 fraction digits and a zone, and the Unix ns it means."""
    seconds = draw(st.integers(86_400, MAX_NS // 10**9 - 86_400))
    digits = draw(st.integers(0, 9))
    frac = draw(st.integers(0, 10**digits - 1)) if digits else 0
    offset_min = draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))
    local = datetime(1970, 1, 1) + timedelta(seconds=seconds + offset_min * 60)
    zone = (
        "Z"
        if offset_min == 0 and draw(st.booleans())
        else f"{'+' if offset_min >= 0 else '-'}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    )
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac:0{digits}d}" if digits else "") + zone
    return text, seconds * 10**9 + (frac * 10 ** (9 - digits) if digits else 0)


@st.composite
def valid_record(draw) -> tuple[dict, dict]:
    """A record object and the Record fields it must decode to."""
    obj = {"line": draw(st.text())}
    want = {
        "line": obj["line"],
        "ts_ns": None,
        "stream": "stdout",
        "level": None,
        "attrs": None,
        "labels": None,
    }
    for key in ("container_id", "container_name", "image", "host", "service"):
        if draw(st.booleans()):
            obj[key] = want[key] = draw(st.text(max_size=20))
    kind = draw(st.sampled_from(["none", "rfc3339", "seconds", "ts_ns"]))
    if kind == "rfc3339":
        obj["ts"], want["ts_ns"] = draw(rfc3339())
    elif kind == "seconds":
        # Whole seconds, or eighths of one (exact in binary), so the number survives as a float.
        whole, eighths = draw(st.integers(0, 2**33)), draw(st.integers(0, 7))
        obj["ts"] = whole + eighths / 8 if eighths else whole
        want["ts_ns"] = whole * 10**9 + eighths * 125_000_000
    elif kind == "ts_ns":
        obj["ts_ns"] = want["ts_ns"] = draw(st.integers(-(2**63), 2**63))
    if draw(st.booleans()):
        obj["stream"] = want["stream"] = draw(st.sampled_from(["stdout", "stderr"]))
    if draw(st.booleans()):
        severity = draw(st.integers(0, 7))
        obj["level"] = draw(
            st.sampled_from([severity, *[n for n, s in SEVERITY_BY_NAME.items() if s == severity]])
        )
        if isinstance(obj["level"], str) and draw(st.booleans()):
            obj["level"] = obj["level"].upper()
        want["level"] = severity
    if draw(st.booleans()):
        obj["labels"] = draw(st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4))
        want["labels"] = obj["labels"] or None
    if draw(st.booleans()):
        obj["attrs"] = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=4))
        want["attrs"] = obj["attrs"] or None
    if draw(st.booleans()):
        obj["tenant"] = "t"
    return obj, want


def decode(body: bytes) -> list[Record]:
    return [record_from_object(n, obj, DRIVER, NOW) for n, obj in decode_body(body)]


@settings(max_examples=150, deadline=None)
@given(st.lists(valid_record(), max_size=8), st.booleans(), st.booleans())
def test_decoder_round_trips_valid_records(pairs, as_array, ascii_only):
    dumps = lambda o: json.dumps(o, ensure_ascii=ascii_only)  # noqa: E731
    if as_array:
        body = dumps([obj for obj, _ in pairs]).encode()
    else:
        body = "\n".join(dumps(obj) for obj, _ in pairs).encode()
    decoded = decode(body)
    assert len(decoded) == len(pairs)
    for record, (_, want) in zip(decoded, pairs, strict=True):
        assert record.tenant == "t"
        assert record.driver_id == DRIVER.id
        assert record.received_ns == NOW
        for key, value in want.items():
            assert getattr(record, key) == value, key


def _only_bad_record(body: bytes) -> None:
    """Decoding either succeeds or raises BadRecord naming a line; anything else escapes."""
    error = None
    try:
        decode(body)
    except BadRecord as e:
        error = e
    if error is not None:
        assert error.line >= 1
        assert error.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_decoder_turns_arbitrary_bytes_into_records_or_bad_record(body):
    _only_bad_record(body)


near_json_values = json_scalars | st.floats() | st.integers() | st.just(10**400)
any_values = near_json_values | st.recursive(
    near_json_values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def mostly(valid):
    """Usually a value of the right type (so decoding gets to the next field), else anything."""
    # one_of would flatten any_values' many branches and drown the valid one: pick a side first.
    return st.sampled_from([valid, valid, valid, any_values]).flatmap(lambda side: side)


timestamps = st.from_regex(
    r"-?\d{1,5}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d{1,12})?(Z|[+-]\d\d:?\d\d)?", fullmatch=True
)
near_records = st.fixed_dictionaries(
    {"line": mostly(st.text(max_size=5))},
    optional={
        "ts": mostly(st.floats() | st.integers() | st.just(10**400) | timestamps),
        "ts_ns": mostly(st.integers() | st.floats()),
        "stream": mostly(st.sampled_from(["stdout", "stderr"])),
        "level": mostly(st.integers(-2, 10) | st.sampled_from(sorted(SEVERITY_BY_NAME))),
        "tenant": mostly(st.just("t")),
        "labels": mostly(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)),
        "attrs": mostly(st.dictionaries(st.text(max_size=3), any_values, max_size=3)),
        "other": any_values,
        **dict.fromkeys(
            ("container_id", "container_name", "image", "host", "service"), mostly(st.text(max_size=5))
        ),
    },
) | st.dictionaries(st.text(max_size=8), any_values, max_size=4)


@settings(max_examples=250, deadline=None)
@given(st.lists(near_records, max_size=4), st.booleans())
def test_decoder_turns_arbitrary_objects_into_records_or_bad_record(objects, as_array):
    if as_array:
        body = json.dumps(objects).encode()
    else:
        body = "\n".join(json.dumps(o) for o in objects).encode()
    _only_bad_record(body)


def test_decoder_refuses_nan_even_where_it_would_be_ignored():
    with pytest.raises(BadRecord):
        decode(b'{"line": "x", "other": NaN}')
    assert math.isnan(json.loads("NaN"))  # the stdlib default the decoder must not inherit
