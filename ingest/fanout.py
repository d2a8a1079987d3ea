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

from ingest.store.schema import STREAM_NAMES

log = logging.getLogger(__name__)

EVENT_TYPE = "tail.lines"


def tenant_group(tenant: str) -> str:
    # Channel group names allow only [A-Za-z0-9._-]; tenant slugs from drivers may hold more.
    return "tail.t." + hashlib.sha1(tenant.encode(), usedforsecurity=False).hexdigest()[:20]


def container_group(ckey: int) -> str:
    return f"tail.c.{ckey}"


def build_messages(committed) -> dict[str, dict]:
    """group name -> message, for one committed batch."""
    batch = committed.batch
    # Keyed by container key, not by the batch's metadata entry: records of one container that
    # disagree on its name or image make two entries with the same key, and one must not
    # overwrite the other's lines.
    by_container: dict[int, list] = {}
    meta_of: dict[int, int] = {}
    row_id = committed.first_id
    for idx, ts_ns, _received, stream, level, flags, line, attrs, _raw in batch.rows:
        ckey = committed.ckeys[idx]
        meta_of.setdefault(ckey, idx)
        by_container.setdefault(ckey, []).append(
            [row_id, ts_ns, STREAM_NAMES.get(stream, "unknown"), level, flags, line.decode(), attrs]
        )
        row_id += 1
    messages: dict[str, dict] = {}
    by_tenant: dict[str, dict] = {}
    for ckey, lines in by_container.items():
        meta = batch.metas[meta_of[ckey]]
        container = {
            "ckey": ckey,
            "tenant": meta.tenant,
            "container_id": meta.container_id,
            "name": meta.name,
            "image": meta.image,
            "service": meta.service,
            "host": meta.host,
        }
        messages[container_group(ckey)] = {
            "type": EVENT_TYPE,
            "containers": [container],
            "lines": {str(ckey): lines},
        }
        tmsg = by_tenant.setdefault(meta.tenant, {"type": EVENT_TYPE, "containers": [], "lines": {}})
        tmsg["containers"].append(container)
        tmsg["lines"][str(ckey)] = lines
    for tenant, msg in by_tenant.items():
        messages[tenant_group(tenant)] = msg
    return messages


async def publish(channel_layer, committed) -> None:
    for group, message in build_messages(committed).items():
        try:
            await channel_layer.group_send(group, message)
        except Exception:
            # The rows are committed; a tail client notices the id gap and refills from the store.
            log.exception("live fan-out to %s failed", group)
