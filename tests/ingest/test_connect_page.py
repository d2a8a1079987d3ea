import html
import re

import pytest

from tests.base import make_driver

pytestmark = pytest.mark.django_db(transaction=True)


def snippets(client, driver, **params) -> str:
    response = client.get(f"/drivers/{driver.pk}/connect/", params)
    assert response.status_code == 200
    return html.unescape(
        " ".join(re.findall(r"<pre[^>]*><code>(.*?)</code></pre>", response.content.decode(), re.S))
    )


@pytest.mark.parametrize(
    ("kind", "bind", "options", "expected"),
    [
        (
            "zmq",
            "tcp://0.0.0.0:6362",
            {},
            ["--log-driver zmqlog", "--log-opt zmq-address=tcp://logs.example.com:6362"],
        ),
        (
            "gelf",
            "udp://0.0.0.0:12201",
            {},
            ["--log-driver gelf", "gelf-address=udp://logs.example.com:12201", '"log-driver": "gelf"'],
        ),
        (
            "fluentd",
            "0.0.0.0:24224",
            {"tag_template": "{{.Name}}"},
            [
                "fluentd-address=tcp://logs.example.com:24224",
                "--log-opt 'tag={{.Name}}'",
                "fluentd-request-ack=true",
            ],
        ),
        (
            "syslog",
            "0.0.0.0:514",
            {},
            ["syslog-address=tcp://logs.example.com:514", "syslog-format=rfc5424micro"],
        ),
        (
            "splunk",
            "0.0.0.0:8088",
            {},
            ["splunk-url=http://logs.example.com:8088", '--log-opt splunk-token="$LOGSITE_TOKEN"'],
        ),
        (
            "plugin",
            "0.0.0.0:8514",
            {},
            [
                "LOGSITE_URL=http://logs.example.com:8514",
                "--log-driver logsite",
                "LOGSITE_READ_URL=http://testserver",
            ],
        ),
        (
            "journal",
            "0.0.0.0:19532",
            {},
            ["URL=http://logsite:$LOGSITE_TOKEN@logs.example.com:19532", '"log-driver": "journald"'],
        ),
        (
            "http",
            "0.0.0.0:8514",
            {},
            ["-H 'Authorization: Bearer '\"$LOGSITE_TOKEN\"", "http://logs.example.com:8514/api/v1/push"],
        ),
    ],
)
def test_it_fills_in_each_kinds_address_and_options(client, actors, kind, bind, options, expected):
    driver, token = make_driver(kind, bind, tenant=actors.tenant_a, **options)
    client.force_login(actors.bob)  # a viewer: nothing secret is on this page
    text = snippets(client, driver, host="logs.example.com")
    for part in expected:
        assert part in text, part
    assert token not in text
    if kind in ("gelf", "fluentd", "splunk", "plugin"):
        assert "com\\.docker\\.compose\\.(project|service)" in text  # labels for timelines travel along


def test_an_unbound_zmq_driver_tells_containers_to_name_their_tenant(client, actors):
    driver, _ = make_driver("zmq", "tcp://0.0.0.0:6362")
    client.force_login(actors.admin)
    assert "-e TENANT_ID=your-tenant" in snippets(client, driver)


def test_it_escapes_and_quotes_everything(client, actors):
    hostile = "<script>alert(1)</script>$(reboot){{.ID}}"
    driver, _ = make_driver("syslog", "0.0.0.0:514", tenant=actors.tenant_a, tag_template=hostile)
    client.force_login(actors.alice)
    page = client.get(f"/drivers/{driver.pk}/connect/", {"host": "<b>evil"}).content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>evil" not in page
    text = snippets(client, driver, host="<b>evil")
    assert "syslog-address=tcp://testserver:514" in text  # a bad host is ignored
    assert "--log-opt 'tag=<script>alert(1)</script>$(reboot){{.ID}}'" in text  # single-quoted for the shell
