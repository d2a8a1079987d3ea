import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import driver_options
from ingest.driver_options import OPTIONS, OptionsError, clean_options


def test_it_refuses_an_unknown_option_and_names_the_known_ones():
    with pytest.raises(OptionsError) as e:
        clean_options("zmq", {"rcvhwm": 10, "zmq-address": "tcp://x:1"})
    assert e.value.messages == ["unknown option 'zmq-address' for a zmq driver (known: rcvhwm)"]


def test_it_says_when_a_kind_has_no_options_at_all():
    with pytest.raises(OptionsError) as e:
        clean_options("syslog", {"transport": "udp"})
    assert "known: max_message_bytes, tag_template" in e.value.messages[0]


def test_it_reports_every_problem_at_once():
    with pytest.raises(OptionsError) as e:
        clean_options("gelf", {"max_message_bytes": "huge", "chunk_timeout_s": 0, "nope": 1})
    assert len(e.value.messages) == 3
    assert (
        "max_message_bytes: must be a size in bytes such as 65536, 64k or 16m, not 'huge'" in e.value.messages
    )
    assert "chunk_timeout_s: must be at least 0.1, not 0" in e.value.messages


def test_it_types_values_and_accepts_sizes_with_units():
    cleaned = clean_options(
        "journal",
        {"auth": "none", "max_field_bytes": "64k", "max_entry_bytes": 2048, "partial_timeout_s": "2.5"},
    )
    assert cleaned == {
        "auth": "none",
        "max_field_bytes": 65536,
        "max_entry_bytes": 2048,
        "partial_timeout_s": 2.5,
    }


def test_it_checks_choices_ranges_and_booleans():
    with pytest.raises(OptionsError, match="auth: must be one of token, none"):
        clean_options("journal", {"auth": "basic"})
    with pytest.raises(OptionsError, match="rcvhwm: must be at most 100000000"):
        clean_options("zmq", {"rcvhwm": 10**9})
    with pytest.raises(OptionsError, match="rcvhwm: must be a whole number"):
        clean_options("zmq", {"rcvhwm": 1.5})
    with pytest.raises(OptionsError, match="tenant_label: must be true or false"):
        clean_options("http", {"tenant_label": "perhaps"})
    assert clean_options("http", {"tenant_label": "yes"}) == {"tenant_label": True}


def test_it_checks_tag_templates_and_tenant_slugs():
    with pytest.raises(OptionsError, match="unbalanced"):
        clean_options("syslog", {"tag_template": "{{.Name}"})
    with pytest.raises(OptionsError, match="not tenant slugs: 'Tenant B'"):
        clean_options("http", {"tenant_label_allow": "tenant-a,Tenant B"})
    assert clean_options("http", {"tenant_label_allow": " tenant-a , tenant-b "}) == {
        "tenant_label_allow": "tenant-a,tenant-b"
    }


def test_it_refuses_options_that_are_not_an_object():
    with pytest.raises(OptionsError, match="JSON object"):
        clean_options("http", ["rcvhwm"])
    assert clean_options("http", None) == {}


def test_it_fills_defaults_for_what_is_not_set():
    assert driver_options.effective("fluentd", {"tag_template": "{{.Name}}"})["partial_timeout_s"] == 5.0


def test_every_default_passes_its_own_validation():
    for kind, options in OPTIONS.items():
        assert clean_options(kind, {o.name: o.default for o in options}) is not None


json_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.lists(st.text(max_size=5), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
option_names = st.sampled_from([*sorted({o.name for opts in OPTIONS.values() for o in opts}), "x", ""])


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(sorted(OPTIONS)), st.dictionaries(option_names, json_values, max_size=6))
def test_it_answers_any_input_with_a_clean_result_or_an_options_error(kind, options):
    try:
        cleaned = clean_options(kind, options)
    except OptionsError as e:
        messages = e.messages
        assert messages
    else:
        assert set(cleaned) <= {o.name for o in OPTIONS[kind]}
        assert clean_options(kind, cleaned) == cleaned  # cleaning is idempotent
