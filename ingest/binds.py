"""Bind addresses: what a driver's `bind` means for its kind, and which drivers would collide.

Forms accepted per kind (the same the receivers parse):
- zmq: `tcp://host:port` (`*` for every interface; port `*` or 0 = any free port), `ipc://path`
- http, splunk, journal, plugin: `host:port`, optionally written `tcp://host:port`
- gelf, syslog: `udp://host:port`, `tcp://host:port`, or `host:port` for both on one port
- fluentd: `tcp://host:port` or `host:port`

Two enabled drivers collide when they would listen on the same protocol and port and their
hosts overlap (equal, or either one is a wildcard). Port 0 means "any free port" and never
collides. Every ingest process starts every enabled driver, so the check is global, not per host.
"""

import ipaddress
import re
from dataclasses import dataclass

TCP_ONLY = {"http": "tcp", "splunk": "tcp", "journal": "tcp", "plugin": "tcp", "fluentd": "tcp"}
BOTH = {"gelf", "syslog"}
WILDCARDS = {"0.0.0.0", "::", "*", ""}
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


@dataclass(frozen=True)
class Endpoint:
    protocol: str  # "tcp" or "udp" ("ipc" for zmq ipc:// paths)
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.protocol}" if self.protocol != "ipc" else f"ipc://{self.host}"

    @property
    def wildcard(self) -> bool:
        return self.host in WILDCARDS


def endpoints(kind: str, bind: str) -> list[Endpoint]:
    """The sockets a driver of `kind` bound to `bind` would open. Raises ValueError."""
    bind = (bind or "").strip()
    if not bind:
        raise ValueError("the bind address is required")
    if any(c.isspace() for c in bind) or len(bind) > 255:
        raise ValueError("the bind address must not contain spaces")
    scheme, sep, rest = bind.partition("://")
    if not sep:
        scheme, rest = "", bind
    scheme = scheme.lower()
    if kind == "zmq":
        if scheme == "ipc":
            if not rest:
                raise ValueError("ipc:// needs a socket path")
            return [Endpoint("ipc", rest, 0)]
        if scheme != "tcp":
            raise ValueError("a zmq bind is tcp://host:port (or ipc://path), e.g. tcp://0.0.0.0:6362")
        host, port = _host_port(rest, star_port=True)
        return [Endpoint("tcp", host, port)]
    if kind in TCP_ONLY:
        if scheme not in ("", "tcp") and not (kind != "fluentd" and scheme == "http"):
            raise ValueError(f"a {kind} bind is host:port (TCP), e.g. 0.0.0.0:8514")
        host, port = _host_port(rest)
        return [Endpoint("tcp", host, port)]
    if kind in BOTH:
        if scheme not in ("", "tcp", "udp"):
            raise ValueError(f"a {kind} bind is udp://host:port, tcp://host:port or host:port (both)")
        host, port = _host_port(rest)
        protocols = [scheme] if scheme else ["udp", "tcp"]
        return [Endpoint(p, host, port) for p in protocols]
    raise ValueError(f"unknown driver kind {kind!r}")


def _host_port(text: str, star_port: bool = False) -> tuple[str, int]:
    if text.startswith("["):
        host, bracket, tail = text[1:].partition("]")
        if not bracket or not tail.startswith(":"):
            raise ValueError(f"bad IPv6 bind address {text!r}; write [::1]:8514")
        port_text = tail[1:]
        _check_ip6(host)
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ValueError(f"the bind address {text!r} has no port; write host:port")
        if ":" in host:
            raise ValueError(f"write an IPv6 address in brackets, e.g. [{host}]:{port_text}")
        _check_host(host)
    if star_port and port_text == "*":
        return _canonical(host), 0
    if not port_text.isdigit() or len(port_text) > 5:
        raise ValueError(f"the port {port_text!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"the port {port} is over 65535")
    return _canonical(host), port


def _check_ip6(host: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IPv6 address") from None


def _check_host(host: str) -> None:
    if host in WILDCARDS:
        return
    try:
        ipaddress.IPv4Address(host)
        return
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise ValueError(f"{host!r} is not a host name or IP address")


def _canonical(host: str) -> str:
    if host in ("*", ""):
        return "0.0.0.0"
    if host.lower() == "localhost":
        return "127.0.0.1"
    return host.lower()


def overlaps(a: Endpoint, b: Endpoint) -> bool:
    if a.protocol != b.protocol:
        return False
    if a.protocol == "ipc":
        return a.host == b.host
    if a.port == 0 or b.port != a.port:
        return False
    return a.host == b.host or a.wildcard or b.wildcard


@dataclass(frozen=True)
class Conflict:
    other_name: str
    other_bind: str
    endpoint: Endpoint

    def __str__(self) -> str:
        return (
            f"{self.endpoint} is already used by the enabled driver {self.other_name!r} ({self.other_bind})"
        )


def conflicts(kind: str, bind: str, others) -> list[Conflict]:
    """Collisions of (kind, bind) with `others`: iterable of (name, kind, bind) of enabled drivers."""
    mine = endpoints(kind, bind)
    found = []
    for name, other_kind, other_bind in others:
        try:
            theirs = endpoints(other_kind, other_bind)
        except ValueError:
            continue  # a stored bad address cannot start either; it blocks nothing
        for a in mine:
            if any(overlaps(a, b) for b in theirs):
                found.append(Conflict(name, other_bind, a))
                break
    return found
