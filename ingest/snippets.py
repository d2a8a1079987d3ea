"""Copy-and-paste configuration that points containers at one driver ("Connect a container").

Every value that comes from the database or the request is quoted for the language of its
snippet here (shlex for shell, json.dumps for JSON and for YAML scalars, which JSON strings
are valid as); the template then HTML-escapes the whole text. The clear token is never
known here: snippets use the placeholder $LOGSITE_TOKEN and say where its value comes from.
"""

import json
import shlex
from dataclasses import dataclass

from ingest import binds, driver_options

TOKEN_PLACEHOLDER = "$LOGSITE_TOKEN"  # noqa: S105 - a placeholder, not a secret
# Ships the labels that service timelines and tenant override read (ingest/timelines.py).
LABELS_REGEX = r"^(com\.docker\.compose\.(project|service)|logsite\..+)$"


@dataclass(frozen=True)
class Snippet:
    title: str
    language: str  # shell, json, yaml, ini
    text: str
    note: str = ""


def _word(text: str) -> str:
    """One shell word; the token placeholder stays expandable ('key='"$LOGSITE_TOKEN")."""
    if TOKEN_PLACEHOLDER not in text:
        return shlex.quote(text)
    head, _, tail = text.partition(TOKEN_PLACEHOLDER)
    return "".join([shlex.quote(head) if head else "", f'"{TOKEN_PLACEHOLDER}"', _word(tail) if tail else ""])


def _sh(*words: str) -> str:
    return " ".join(_word(w) for w in words)


def _docker_run(driver_name: str, opts: dict[str, str], env: dict[str, str] | None = None) -> str:
    parts = ["docker run --log-driver " + _word(driver_name)]
    parts += ["--log-opt " + _word(f"{key}={value}") for key, value in opts.items()]
    parts += ["-e " + _word(f"{key}={value}") for key, value in (env or {}).items()]
    parts.append("IMAGE")
    return " \\\n  ".join(parts)


def _daemon_json(driver_name: str, opts: dict[str, str]) -> str:
    return json.dumps({"log-driver": driver_name, "log-opts": opts}, indent=2)


def _compose(driver_name: str, opts: dict[str, str], env: dict[str, str] | None = None) -> str:
    lines = [
        "services:",
        "  app:",
        "    image: IMAGE",
        "    logging:",
        f"      driver: {json.dumps(driver_name)}",
    ]
    if opts:
        lines.append("      options:")
        lines += [f"        {json.dumps(k)}: {json.dumps(v)}" for k, v in opts.items()]
    if env:
        lines.append("    environment:")
        lines += [f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in env.items()]
    return "\n".join(lines)


def _docker_three(
    driver_name: str, opts: dict[str, str], env: dict | None = None, note: str = ""
) -> list[Snippet]:
    return [
        Snippet("docker run", "shell", _docker_run(driver_name, opts, env), note),
        Snippet(
            "/etc/docker/daemon.json (every container of the host; restart dockerd)",
            "json",
            _daemon_json(driver_name, opts),
        ),
        Snippet("docker compose", "yaml", _compose(driver_name, opts, env)),
    ]


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def target_host(driver, public_host: str) -> str:
    """The host senders should use: the bind host when it is a specific address, else ours."""
    endpoint = binds.endpoints(driver.kind, driver.bind)[0]
    if endpoint.protocol == "ipc" or endpoint.wildcard or endpoint.host.startswith("127."):
        return public_host
    return endpoint.host


def snippets_for(driver, public_host: str, web_url: str) -> list[Snippet]:
    """All snippets for `driver`. Raises ValueError when its bind address is unusable."""
    endpoints = binds.endpoints(driver.kind, driver.bind)
    host = _url_host(target_host(driver, public_host))
    port = endpoints[0].port
    options = driver_options.effective(driver.kind, driver.options)
    tag = str(options.get("tag_template", "{{.ID}}"))
    build = _BUILDERS[driver.kind]
    return build(driver, host, port, endpoints, tag, web_url)


def _zmq(driver, host, port, endpoints, tag, web_url):
    opts = {"zmq-address": f"tcp://{host}:{port}"}
    env = None
    note = "zmqlog accepts only zmq-address. ZeroMQ cannot acknowledge: drops are counted on the status page."
    if driver.tenant_id is None:
        env = {"TENANT_ID": "your-tenant", "SERVICE_ID": "your-service"}
        note += " This driver is not bound to a tenant: the containers' TENANT_ID chooses it."
    return _docker_three("zmqlog", opts, env, note)


def _gelf(driver, host, port, endpoints, tag, web_url):
    protocols = {e.protocol for e in endpoints}
    scheme = "udp" if "udp" in protocols else "tcp"
    opts = {"gelf-address": f"{scheme}://{host}:{port}", "labels-regex": LABELS_REGEX}
    note = (
        "GELF has no token and UDP no acknowledgement: bind the driver where only your Docker hosts reach it."
    )
    if protocols == {"udp", "tcp"}:
        note += f" TCP works on the same port: gelf-address=tcp://{host}:{port}."
    return _docker_three("gelf", opts, note=note)


def _fluentd(driver, host, port, endpoints, tag, web_url):
    opts = {
        "fluentd-address": f"tcp://{host}:{port}",
        "tag": tag,
        "fluentd-request-ack": "true",
        "fluentd-sub-second-precision": "true",
        "labels-regex": LABELS_REGEX,
    }
    note = (
        "With fluentd-request-ack each line is acknowledged only once stored; a container's "
        "logging waits while Logsite is unreachable. Add fluentd-async=true to buffer in dockerd "
        "instead. Acknowledged lines are not joined by multi-line rules across messages."
    )
    return _docker_three("fluentd", opts, note=note)


def _syslog(driver, host, port, endpoints, tag, web_url):
    protocols = {e.protocol for e in endpoints}
    scheme = "tcp" if "tcp" in protocols else "udp"
    opts = {"syslog-address": f"{scheme}://{host}:{port}", "syslog-format": "rfc5424micro", "tag": tag}
    note = "The tag must stay equal to the driver's tag_template, which is how Logsite finds the container."
    return _docker_three("syslog", opts, note=note)


def _splunk(driver, host, port, endpoints, tag, web_url):
    opts = {
        "splunk-url": f"http://{host}:{port}",
        "splunk-token": TOKEN_PLACEHOLDER,
        "splunk-format": "inline",
        "tag": tag,
        "labels-regex": LABELS_REGEX,
    }
    hint = driver.token_hint or "none issued yet"
    note = f"$LOGSITE_TOKEN is the token shown once when the driver's token was issued ({hint})."
    return _docker_three("splunk", opts, note=note)


def _plugin(driver, host, port, endpoints, tag, web_url):
    install = "\n".join(
        [
            "# once per Docker host: build and enable the plugin (driver/README.md)",
            "docker plugin set logsite "
            + _sh(
                f"LOGSITE_URL=http://{host}:{port}",
                f"LOGSITE_READ_URL={web_url}",
                f"LOGSITE_TOKEN={TOKEN_PLACEHOLDER}",
            ),
            "docker plugin enable logsite",
        ]
    )
    opts = {"labels-regex": LABELS_REGEX}
    return [
        Snippet(
            "plugin settings",
            "shell",
            install,
            "The token stays in the plugin's settings, out of docker inspect.",
        ),
        *_docker_three(
            "logsite", opts, note="docker logs keeps working: the plugin reads lines back from Logsite."
        ),
    ]


def _journal(driver, host, port, endpoints, tag, web_url):
    needs_token = driver_options.effective("journal", driver.options).get("auth") == "token"
    credentials = f"logsite:{TOKEN_PLACEHOLDER}@" if needs_token else ""
    conf = f"# /etc/systemd/journal-upload.conf\n[Upload]\nURL=http://{credentials}{host}:{port}"
    docker = _daemon_json("journald", {"labels-regex": LABELS_REGEX})
    enable = "systemctl enable --now systemd-journal-upload"
    return [
        Snippet(
            "journal-upload.conf",
            "ini",
            conf,
            "Replace $LOGSITE_TOKEN with the driver token; curl sends it as Basic auth.",
        ),
        Snippet("/etc/docker/daemon.json (containers log to the journal)", "json", docker),
        Snippet("start the uploader", "shell", enable),
    ]


def _http(driver, host, port, endpoints, tag, web_url):
    curl = "\n".join(
        [
            "curl -H "
            + _sh(
                f"Authorization: Bearer {TOKEN_PLACEHOLDER}",
                "--data-binary",
                "@-",
                f"http://{host}:{port}/api/v1/push",
            )
            + " <<'NDJSON'",
            '{"line": "hello from curl", "container_name": "web-1", "image": "nginx:1.27"}',
            "NDJSON",
        ]
    )
    return [
        Snippet("curl (NDJSON, one record per line)", "shell", curl, "Record keys: README.md, HTTP push.")
    ]


_BUILDERS = {
    "zmq": _zmq,
    "gelf": _gelf,
    "fluentd": _fluentd,
    "syslog": _syslog,
    "splunk": _splunk,
    "plugin": _plugin,
    "journal": _journal,
    "http": _http,
}
