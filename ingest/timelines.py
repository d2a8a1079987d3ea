"""Service timelines: the containers that are "the same service" over time, as one history.

A re-created container gets a new id, hence a new `containers` row and container key; its
timeline key stays the same, so search and tail can follow the service across re-creations.
The key of a container, first rule that applies:
1. `label:<value>`             the container label `logsite.timeline` (explicit choice)
2. `compose:<project>/<svc>`   the labels com.docker.compose.project and .service
3. `service:<service>`         a service the driver names (zmq service id, HTTP `service`,
                                plugin `service` option); "default" does not count
4. `name:<name>`               the container name (docker run --name web, re-run later)
5. `container:<id>`            nothing else known: the container alone

Keys are plain strings, safe to put in URLs and query strings (`timeline:` in the search
language). `timeline_ckeys(tenant, key)` is the one function search and tail use.
"""

from dataclasses import dataclass, field
from datetime import datetime

from ingest.models import Container

TIMELINE_LABEL = "logsite.timeline"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
KINDS = ("label", "compose", "service", "name", "container")


def timeline_key(labels: dict | None, name: str, service: str, container_id: str) -> str:
    labels = labels or {}
    if labels.get(TIMELINE_LABEL):
        return f"label:{labels[TIMELINE_LABEL]}"
    project, svc = labels.get(COMPOSE_PROJECT), labels.get(COMPOSE_SERVICE)
    if project and svc:
        return f"compose:{project}/{svc}"
    if service and service != "default":
        return f"service:{service}"
    if name:
        return f"name:{name.lstrip('/')}"
    return f"container:{container_id}"


def key_of(container: Container) -> str:
    return timeline_key(container.labels, container.name, container.service, container.container_id)


def title_of(key: str) -> str:
    kind, _, value = key.partition(":")
    return {"compose": f"{value} (compose)", "service": f"{value} (service)", "label": value}.get(kind, value)


def _candidates(tenant: str, key: str):
    kind, sep, value = key.partition(":")
    if not sep or kind not in KINDS or not value:
        raise ValueError(f"not a timeline key: {key!r}")
    scope = Container.objects.filter(tenant=tenant)
    if kind == "label":
        return scope.filter(labels__contains={TIMELINE_LABEL: value})
    if kind == "compose":
        project, slash, svc = value.partition("/")
        if not slash:
            raise ValueError(f"not a timeline key: {key!r}")
        return scope.filter(labels__contains={COMPOSE_PROJECT: project, COMPOSE_SERVICE: svc})
    if kind == "service":
        return scope.filter(service=value)
    if kind == "name":
        return scope.filter(name=value)
    return scope.filter(container_id=value)


def timeline_ckeys(tenant: str, timeline: str) -> list[int]:
    """Container keys of `tenant` on the timeline `timeline`, oldest container first.

    The caller must already have checked that the user may read `tenant`
    (accounts.access.visible_tenants). Raises ValueError for a malformed key; an unknown one
    gives []. A cheap indexed lookup narrows the candidates, then the same rule that made the
    key decides, so a container carrying both compose labels and `logsite.timeline` belongs to
    its `label:` timeline only.
    """
    found = [c for c in _candidates(tenant, timeline).order_by("first_seen", "id") if key_of(c) == timeline]
    return [c.id for c in found]


@dataclass
class Timeline:
    tenant: str
    key: str
    containers: list = field(default_factory=list)

    @property
    def title(self) -> str:
        return title_of(self.key)

    @property
    def last_seen(self) -> datetime | None:
        return max((c.last_seen for c in self.containers), default=None)

    @property
    def first_seen(self) -> datetime | None:
        return min((c.first_seen for c in self.containers), default=None)


def timelines_for(containers) -> list[Timeline]:
    """Group containers (any iterable of Container) into timelines, most recently active first."""
    by_key: dict[tuple[str, str], Timeline] = {}
    for c in containers:
        key = (c.tenant, key_of(c))
        by_key.setdefault(key, Timeline(c.tenant, key[1])).containers.append(c)
    for t in by_key.values():
        t.containers.sort(key=lambda c: (c.first_seen, c.id))
    return sorted(by_key.values(), key=lambda t: t.last_seen, reverse=True)
