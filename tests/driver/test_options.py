import pytest
from hypothesis import given
from hypothesis import strategies as st

from driver.container import ContainerInfo, InfoError
from driver.options import OptionError, PluginEnv, parse_options, parse_size

ENV = PluginEnv(url="http://logsite:8080", token="s3cret", host="node-1")


def info(opts=None, env=None, labels=None, **extra):
    body = {
        "ContainerID": "f" * 64,
        "ContainerName": "/web-1",
        "ContainerImageName": "nginx:latest",
        "ContainerImageID": "sha256:" + "a" * 64,
        "ContainerEnv": env or [],
        "ContainerLabels": labels,
        "Config": opts,
        "DaemonName": "docker",
        **extra,
    }
    return ContainerInfo.from_json(body)


def test_it_needs_a_container_id():
    with pytest.raises(InfoError, match="ContainerID"):
        ContainerInfo.from_json({"ContainerName": "/x"})


def test_it_takes_defaults_from_the_plugin_env_and_the_container_env():
    o = parse_options(info(env=["TENANT_ID=acme", "SERVICE_ID=web", "PATH=/bin"]), ENV)
    assert o.push_url == "http://logsite:8080/api/v1/push"
    assert o.read_base_url == "http://logsite:8080"
    assert (o.tenant, o.service, o.token, o.host) == ("acme", "web", "s3cret", "node-1")


def test_log_opts_win_over_defaults():
    opts = {"logsite-url": "https://l.example/base/", "logsite-token": "t", "tenant": "t2", "service": "s2"}
    o = parse_options(info(opts, env=["TENANT_ID=acme"]), ENV)
    assert o.push_url == "https://l.example/base/api/v1/push"
    assert (o.tenant, o.service, o.token) == ("t2", "s2", "t")


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"bogus": "1"}, "unknown log-opt bogus"),
        ({"logsite-url": "ftp://x"}, "http"),
        ({"logsite-url": "http://x?a=1"}, "without query"),
        ({"buffer-size": "lots"}, "buffer-size must be a size"),
        ({"buffer-size": "1k"}, "buffer-size must be between"),
        ({"batch-wait": "5"}, "batch-wait must be a duration"),
        ({"filter-regex": "("}, "filter-regex is not a valid"),
        ({"labels-regex": "["}, "labels-regex is not a valid"),
        ({"template": "{log} {nope}"}, "template field {nope} is unknown"),
        ({"template": "{log"}, "unmatched"),
        ({"tag": "{{.Nope}}"}, "tag field .Nope"),
        ({"mode": "sometimes"}, "mode must be"),
        ({"max-buffer-size": "4m"}, "only valid with mode=non-blocking"),
    ],
)
def test_it_refuses_bad_options_with_a_clear_message(opts, message):
    with pytest.raises(
        OptionError, match=message.replace("?", r"\?").replace("{", r"\{").replace("}", r"\}")
    ):
        parse_options(info(opts), ENV)


def test_it_refuses_to_start_without_url_or_token():
    with pytest.raises(OptionError, match="no Logsite URL"):
        parse_options(info(), PluginEnv(token="t"))
    with pytest.raises(OptionError, match="no Logsite token"):
        parse_options(info(), PluginEnv(url="http://x"))


def test_it_accepts_every_option_dockerd_itself_passes():
    opts = {
        "mode": "non-blocking",
        "max-buffer-size": "4m",
        "tag": "{{.Name}}/{{.ID}}",
        "labels": "team",
        "labels-regex": "^com\\.example\\.",
        "env": "REGION",
        "env-regex": "^APP_",
        "cache-disabled": "true",
        "cache-max-size": "20m",
        "cache-max-file": "5",
        "cache-compress": "true",
    }
    o = parse_options(
        info(
            opts,
            env=["REGION=eu", "APP_MODE=x", "SECRET=no"],
            labels={"team": "a", "com.example.x": "b", "other": "c"},
        ),
        ENV,
    )
    assert o.tag == "web-1/ffffffffffff"
    assert o.labels == {"team": "a", "com.example.x": "b"}
    assert o.env == {"REGION": "eu", "APP_MODE": "x"}


def test_it_renders_a_template_with_container_fields_and_labels():
    o = parse_options(
        info(
            {"template": "{{{container_name}}} {label:team} {image_name} {log} @{timestamp}"},
            labels={"team": "a"},
        ),
        ENV,
    )
    assert (
        o.template.render(b"hi \xff", 1_500_000_000)
        == b"{web-1} a nginx:latest hi \xff @1970-01-01T00:00:01.500000000Z"
    )


@given(st.integers(0, 10**6), st.sampled_from(["", "k", "K", "kb", "KiB", "m", "MB", "g"]))
def test_it_parses_docker_sizes(n, unit):
    factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit[:1].lower()]
    assert parse_size(f"{n}{unit}") == n * factor
