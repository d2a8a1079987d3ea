import json

from hypothesis import given
from hypothesis import strategies as st

from driver.container import ContainerInfo
from driver.options import PluginEnv, parse_options
from driver.partials import Line
from driver.records import RecordBuilder

INFO = ContainerInfo.from_json(
    {
        "ContainerID": "c" * 64,
        "ContainerName": '/we"b',
        "ContainerImageName": "img:1",
        "ContainerLabels": {"team": 'a"\\b'},
        "ContainerEnv": ["REGION=eu\u00e9", "SERVICE_ID=svc"],
        "Config": {"labels": "team", "env": "REGION", "tag": "{{.Name}}"},
    }
)
BUILDER = RecordBuilder(INFO, parse_options(INFO, PluginEnv(url="http://x", token="t", host="h")))


@given(
    st.binary(max_size=300),
    st.integers(0, 2**63 - 1),
    st.sampled_from(["stdout", "stderr"]),
    st.none() | st.integers(1, 10**7),
    st.booleans(),
)
def test_it_writes_valid_json_for_any_line(raw, ts, source, truncated_from, incomplete):
    record = BUILDER.build(Line(source, ts, raw, truncated_from=truncated_from, incomplete=incomplete))
    assert b"\n" not in record  # one record per NDJSON line
    got = json.loads(record)
    assert got["line"] == raw.decode("utf-8", "replace")
    assert got["ts_ns"] == ts
    assert got["stream"] == source
    assert got["container_name"] == 'we"b'
    assert got["service"] == "svc"
    assert got["labels"] == {"team": 'a"\\b'}
    attrs = got["attrs"]
    assert attrs["env"] == {"REGION": "eu\u00e9"}
    assert attrs["tag"] == 'we"b'
    assert attrs.get("truncated_from_bytes") == truncated_from
    assert attrs.get("partial_incomplete", False) == incomplete


def test_it_reports_drops_as_a_record_of_the_container():
    got = json.loads(BUILDER.drop_report(42, 1 << 20))
    assert got["attrs"]["logsite_dropped"] == 42
    assert got["container_id"] == "c" * 64
    assert "dropped 42 log lines" in got["line"]
