"""Live fan-out of committed lines: the ONLY place that publishes log lines to the channel layer.

Rule: publish() runs only after the batch's transaction committed, and only the writer calls
it. A browser that receives a line can therefore always find it again in the store, which is
what lets the live tail detect gaps by id and refill them from the database.

One message per batch per group (never per line): Redis drops subscribers that fall 32 MB
behind, and per-line messages would multiply both the load and that risk. Groups: one per
tenant and one per container key; group names are owned here.
"""

import hashlib
import logging
import os
import time

from ingest.store.schema import STREAM_NAMES

log = logging.getLogger(__name__)

EVENT_TYPE = "tail.lines"
# bench/tail.py sets this to see where the latency goes: each message then carries the time
# fan-out started (just after commit) and the time it was handed to Redis.
TRACE = os.environ.get("LOGSITE_TAIL_TRACE") == "1"


def tenant_group(tenant: str) -> str:
    # Channel group names allow only [A-Za-z0-9._-]; tenant slugs from drivers may hold more.
    return "tail.t." + hashlib.sha1(tenant.encode(), usedforsecurity=False).hexdigest()[:20]


def container_group(ckey: int) -> str:
    return f"tail.c.{ckey}"


def build_messages(committed, listened: set[str] | None = None) -> dict[str, dict]:
    """group name -> message, for one committed batch; only `listened` groups when given."""
    batch = committed.batch
    ckeys = committed.ckeys
    # Groups go by container key, not by meta: two metas of one batch can name the same
    # container (e.g. a rename mid-batch) and their lines belong in one message.
    containers: dict[int, dict] = {}
    for idx, meta in enumerate(batch.metas):
        ckey = ckeys[idx]
        if listened is None or container_group(ckey) in listened or tenant_group(meta.tenant) in listened:
            containers[ckey] = {
                "ckey": ckey,
                "tenant": meta.tenant,
                "container_id": meta.container_id,
                "name": meta.name,
                "image": meta.image,
                "service": meta.service,
                "host": meta.host,
            }
    if not containers:
        return {}
    lines_by_ckey: dict[int, list] = {ckey: [] for ckey in containers}
    row_id = committed.first_id
    for idx, ts_ns, _received, stream, level, flags, line, attrs, _raw in batch.rows:
        lines = lines_by_ckey.get(ckeys[idx])
        if lines is not None:
            lines.append(
                [row_id, ts_ns, STREAM_NAMES.get(stream, "unknown"), level, flags, line.decode(), attrs]
            )
        row_id += 1
    messages: dict[str, dict] = {}
    by_tenant: dict[str, dict] = {}
    for ckey, container in containers.items():
        lines = lines_by_ckey[ckey]
        group = container_group(ckey)
        if listened is None or group in listened:
            messages[group] = {"type": EVENT_TYPE, "containers": [container], "lines": {str(ckey): lines}}
        tmsg = by_tenant.setdefault(container["tenant"], {"type": EVENT_TYPE, "containers": [], "lines": {}})
        tmsg["containers"].append(container)
        tmsg["lines"][str(ckey)] = lines
    for tenant, msg in by_tenant.items():
        group = tenant_group(tenant)
        if listened is None or group in listened:
            messages[group] = msg
    return messages


def candidate_groups(committed) -> set[str]:
    groups = {container_group(ckey) for ckey in committed.ckeys}
    groups.update(tenant_group(meta.tenant) for meta in committed.batch.metas)
    return groups


async def listened_groups(channel_layer, groups: set[str]) -> set[str] | None:
    """The groups that have a member now, in one Redis round trip per layer connection.

    Most batches have no live-tail viewer at all; without this check every batch cost two
    Redis round trips per group (channels_redis reads the members inside group_send) and a
    message built for nobody. None means "cannot tell" (another layer type): send to all.
    """
    group_key = getattr(channel_layer, "_group_key", None)
    if group_key is None or not hasattr(channel_layer, "consistent_hash"):
        return None
    # channels_redis keeps a group as a sorted set of channels scored by join time and treats
    # members older than group_expiry as gone; count the same way.
    alive_after = time.time() - channel_layer.group_expiry
    by_connection: dict[int, list[str]] = {}
    for group in groups:
        by_connection.setdefault(channel_layer.consistent_hash(group), []).append(group)
    listened = set()
    for index, names in by_connection.items():
        pipe = channel_layer.connection(index).pipeline(transaction=False)
        for group in names:
            pipe.zcount(group_key(group), alive_after, "+inf")
        counts = await pipe.execute()
        listened.update(group for group, count in zip(names, counts, strict=True) if count)
    return listened


async def publish(channel_layer, committed) -> None:
    started_ms = time.time() * 1000 if TRACE else 0.0
    try:
        listened = await listened_groups(channel_layer, candidate_groups(committed))
    except Exception:
        log.warning("cannot read live-tail group members; sending to every group", exc_info=True)
        listened = None
    if listened is not None and not listened:
        return
    messages = build_messages(committed, listened)
    if TRACE:
        for message in messages.values():
            message["trace"] = {"fanout_ms": started_ms, "publish_ms": time.time() * 1000}
    for group, message in messages.items():
        try:
            await channel_layer.group_send(group, message)
        except Exception:
            # The rows are committed; a tail client notices the id gap and refills from the store.
            log.exception("live fan-out to %s failed", group)
