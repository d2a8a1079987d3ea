import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.binds import Endpoint, conflicts, endpoints


def test_it_reads_each_kinds_forms():
    assert endpoints("zmq", "tcp://*:6362") == [Endpoint("tcp", "0.0.0.0", 6362)]
    assert endpoints("zmq", "tcp://127.0.0.1:*") == [Endpoint("tcp", "127.0.0.1", 0)]
    assert endpoints("http", "0.0.0.0:8514") == [Endpoint("tcp", "0.0.0.0", 8514)]
    assert endpoints("splunk", "http://logs.example.com:8088") == [Endpoint("tcp", "logs.example.com", 8088)]
    assert endpoints("gelf", "udp://0.0.0.0:12201") == [Endpoint("udp", "0.0.0.0", 12201)]
    assert endpoints("syslog", "[::1]:514") == [Endpoint("udp", "::1", 514), Endpoint("tcp", "::1", 514)]
    assert endpoints("fluentd", "localhost:24224") == [Endpoint("tcp", "127.0.0.1", 24224)]


@pytest.mark.parametrize(
    ("kind", "bind", "message"),
    [
        ("zmq", "0.0.0.0:6362", "a zmq bind is tcp://host:port"),
        ("http", "udp://0.0.0.0:8514", "a http bind is host:port"),
        ("fluentd", "udp://0.0.0.0:24224", "a fluentd bind is host:port"),
        ("gelf", "http://0.0.0.0:1", "a gelf bind is udp://host:port"),
        ("http", "0.0.0.0", "has no port"),
        ("http", "0.0.0.0:http", "is not a number"),
        ("http", "0.0.0.0:70000", "over 65535"),
        ("http", "::1:80", "in brackets"),
        ("http", "bad_host!:80", "not a host name"),
        ("http", "", "required"),
        ("http", "0.0.0.0: 80", "spaces"),
    ],
)
def test_it_explains_bad_addresses(kind, bind, message):
    with pytest.raises(ValueError, match=message):
        endpoints(kind, bind)


def test_it_finds_drivers_on_the_same_port_and_protocol():
    others = [("web", "http", "0.0.0.0:8514"), ("gelf-1", "gelf", "udp://0.0.0.0:12201")]
    found = conflicts("splunk", "127.0.0.1:8514", others)
    assert [str(c) for c in found] == [
        "127.0.0.1:8514/tcp is already used by the enabled driver 'web' (0.0.0.0:8514)"
    ]
    # same port, other protocol: no conflict (gelf UDP next to an HTTP driver)
    assert conflicts("http", "0.0.0.0:12201", others) == []
    # a bare gelf bind takes UDP and TCP, so it meets the UDP one
    assert [c.other_name for c in conflicts("gelf", "0.0.0.0:12201", others)] == ["gelf-1"]


def test_it_lets_distinct_hosts_and_any_free_port_coexist():
    others = [("a", "http", "10.0.0.1:8514"), ("b", "zmq", "tcp://127.0.0.1:*")]
    assert conflicts("http", "10.0.0.2:8514", others) == []
    assert conflicts("zmq", "tcp://127.0.0.1:*", others) == []
    assert conflicts("http", "127.0.0.1:0", [("c", "http", "127.0.0.1:0")]) == []


bind_text = st.text(alphabet="tcpudhi:/[]0123456789.*abx-", max_size=30) | st.text(max_size=30)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from(["zmq", "http", "gelf", "fluentd", "syslog", "splunk", "journal", "plugin"]), bind_text
)
def test_it_answers_any_text_with_endpoints_or_a_value_error(kind, bind):
    try:
        result = endpoints(kind, bind)
    except ValueError as e:
        message = str(e)
        assert message
    else:
        assert result
        assert all(0 <= e.port <= 65535 for e in result)
