"""`--log-opt` validation. StartLogging fails on any error here, so the container does not start.

Keys dockerd itself understands (mode, max-buffer-size, tag, labels, env, cache-*) arrive in the
same map and must be accepted. `labels`/`labels-regex`/`env`/`env-regex` keep their dockerd
meaning: allow-lists of container labels and environment variables to ship with every line.
"""

import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from driver.container import ContainerInfo
from driver.template import Template, TemplateError, render_tag


class OptionError(ValueError):
    pass


KiB = 1024
MiB = 1024 * KiB

_OURS = {
    "logsite-url",
    "logsite-read-url",
    "logsite-token",
    "tenant",
    "service",
    "template",
    "filter-regex",
    "buffer-size",
    "batch-size",
    "batch-wait",
    "partial-timeout",
    "max-line-size",
}
_DOCKERD = {
    "mode",
    "max-buffer-size",
    "tag",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "cache-disabled",
    "cache-max-size",
    "cache-max-file",
    "cache-compress",
}
KNOWN_OPTIONS = frozenset(_OURS | _DOCKERD)


@dataclass(frozen=True, slots=True)
class PluginEnv:
    """Plugin-wide defaults from `docker plugin set` (the env of the plugin process).

    The token belongs here rather than in --log-opt: log options are shown by `docker inspect`.
    """

    url: str = ""
    read_url: str = ""
    token: str = ""
    host: str = ""
    # Longest wait between retries while Logsite is down, and the `docker logs -f` poll period.
    retry_max_s: float = 30.0
    follow_poll_s: float = 1.0

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> "PluginEnv":
        env = os.environ if environ is None else environ
        return cls(
            url=env.get("LOGSITE_URL", ""),
            read_url=env.get("LOGSITE_READ_URL", ""),
            token=env.get("LOGSITE_TOKEN", ""),
            host=env.get("LOGSITE_HOST", "") or socket.gethostname(),
            retry_max_s=float(env.get("LOGSITE_RETRY_MAX_SECONDS", "30")),
            follow_poll_s=float(env.get("LOGSITE_FOLLOW_POLL_SECONDS", "1")),
        )


@dataclass(frozen=True, slots=True)
class Options:
    push_url: str
    read_base_url: str
    token: str
    tenant: str | None
    service: str | None
    host: str
    template: Template | None  # None: ship the line unchanged
    filter_re: re.Pattern[str] | None
    labels: dict[str, str]  # allow-listed container labels
    env: dict[str, str]  # allow-listed container env
    tag: str | None
    buffer_bytes: int
    batch_bytes: int
    batch_wait_s: float
    partial_timeout_s: float
    max_line_bytes: int


def parse_options(info: ContainerInfo, plugin_env: PluginEnv) -> Options:
    opts = info.log_opts
    unknown = sorted(set(opts) - KNOWN_OPTIONS)
    if unknown:
        raise OptionError(
            f"unknown log-opt {', '.join(unknown)} for the logsite driver; "
            f"known: {', '.join(sorted(KNOWN_OPTIONS))}"
        )
    _check_mode(opts)

    base = _base_url("logsite-url", opts.get("logsite-url") or plugin_env.url)
    read_base = _base_url("logsite-read-url", opts.get("logsite-read-url") or plugin_env.read_url or base)
    token = opts.get("logsite-token") or plugin_env.token
    if not token:
        raise OptionError(
            "no Logsite token: set --log-opt logsite-token or `docker plugin set LOGSITE_TOKEN`"
        )

    batch_bytes = _size("batch-size", opts.get("batch-size", "1m"), 4 * KiB, 16 * MiB)
    buffer_bytes = _size("buffer-size", opts.get("buffer-size", "64m"), 4 * batch_bytes, 1 << 40)
    filter_text = opts.get("filter-regex")
    try:
        filter_re = re.compile(filter_text) if filter_text else None
    except re.error as exc:
        raise OptionError(f"filter-regex is not a valid regular expression: {exc}") from None
    try:
        template = Template.parse(opts["template"], info) if opts.get("template") else None
        tag = render_tag(opts["tag"], info) if opts.get("tag") else None
    except TemplateError as exc:
        raise OptionError(str(exc)) from None

    return Options(
        push_url=base + "/api/v1/push",
        read_base_url=read_base,
        token=token,
        tenant=opts.get("tenant") or info.env.get("TENANT_ID") or None,
        service=opts.get("service") or info.env.get("SERVICE_ID") or None,
        host=plugin_env.host,
        template=template,
        filter_re=filter_re,
        labels=_allowed("labels", info.labels, opts),
        env=_allowed("env", info.env, opts),
        tag=tag,
        buffer_bytes=buffer_bytes,
        batch_bytes=batch_bytes,
        batch_wait_s=_duration("batch-wait", opts.get("batch-wait", "500ms"), 0.001, 60),
        partial_timeout_s=_duration("partial-timeout", opts.get("partial-timeout", "5s"), 0.01, 3600),
        max_line_bytes=_size("max-line-size", opts.get("max-line-size", "1m"), 16 * KiB, 64 * MiB),
    )


def _check_mode(opts: dict[str, str]) -> None:
    mode = opts.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise OptionError(f"mode must be blocking or non-blocking, not {mode!r}")
    if "max-buffer-size" in opts:
        if mode != "non-blocking":
            raise OptionError("max-buffer-size is only valid with mode=non-blocking")
        _size("max-buffer-size", opts["max-buffer-size"], 1, 1 << 40)


def _base_url(name: str, value: str) -> str:
    if not value:
        raise OptionError(f"no Logsite URL: set --log-opt {name} or `docker plugin set LOGSITE_URL`")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise OptionError(f"{name} must be an http(s) base URL without query, e.g. http://logsite:8080")
    return value.rstrip("/")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": KiB, "m": MiB, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Docker-style sizes: 512, 64k, 10MB, 1.5GiB (binary multiples, like dockerd's RAMInBytes)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _size(name: str, text: str, low: int, high: int) -> int:
    try:
        value = parse_size(text)
    except ValueError:
        raise OptionError(f"{name} must be a size such as 64k or 16m, not {text!r}") from None
    if not low <= value <= high:
        raise OptionError(f"{name} must be between {low} and {high} bytes, not {value}")
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(name: str, text: str, low: float, high: float) -> float:
    m = _DURATION.match(text)
    if not m:
        raise OptionError(f"{name} must be a duration such as 500ms, 5s or 1m, not {text!r}")
    value = float(m.group(1)) * _SECONDS[m.group(2)]
    if not low <= value <= high:
        raise OptionError(f"{name} must be between {low}s and {high}s")
    return value


def _allowed(kind: str, values: dict[str, str], opts: dict[str, str]) -> dict[str, str]:
    keys = {k.strip() for k in opts.get(kind, "").split(",") if k.strip()}
    pattern_text = opts.get(f"{kind}-regex")
    try:
        pattern = re.compile(pattern_text) if pattern_text else None
    except re.error as exc:
        raise OptionError(f"{kind}-regex is not a valid regular expression: {exc}") from None
    return {k: v for k, v in values.items() if k in keys or (pattern is not None and pattern.search(k))}
