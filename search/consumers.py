"""LiveTailConsumer: one websocket, one query, history then live, no gap and no duplicate.

Protocol (JSON both ways; docs/live-tail.md):
  client → {"type": "subscribe", "query": "...", "recent": N}             last N lines, then live
           {"type": "subscribe", "query": "...", "since": "RFC 3339"}     from a time, then live
           {"type": "subscribe", "query": "...", "resume": {ckey: id}}     after those ids, then live
           {"type": "earlier", "before": {"ts_us": T, "id": I}, "limit": N}  a page of history
  server → {"type": "lines", "source": "history|live|refill", "containers": {...}, "lines": [...]}
           {"type": "live"} once history is sent; {"type": "earlier", ...}; {"type": "error", ...}

Groups come only from the caller's visible tenants and the containers of those tenants that
the query can match; nothing a client sends names a group or a tenant. Live messages are
filtered with the same compiled query as search, and a sweep refills from the store whatever
fan-out did not deliver (search/tail/cursor.py explains the rule).
"""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ingest.fanout import container_group, tenant_group
from ingest.store.schema import ID_BLOCK
from ingest.timeparse import rfc3339_to_ns
from search.querylang import QueryError, compile_matcher, parse
from search.querylang.nodes import And, Node, Not, Or, Text, is_container_level
from search.tail import store
from search.tail.cursor import TailCursor
from search.tail.rows import datetime_of, from_fanout, matcher_row, public_container

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
MAX_RECENT = 10_000
MAX_PAGE = 5_000
SEND_CHUNK = 2_000
SWEEP_EVERY_S = 1.5
REFRESH_CONTAINERS_EVERY_S = 5.0
# bench/tail.py: live messages carry fan-out's stamps plus when this consumer got and sent them.
TRACE = os.environ.get("LOGSITE_TAIL_TRACE") == "1"


def names_containers(node: Node) -> bool:
    """True when every matching line must come from containers the query selects by name,
    label, image, ...: then per-container groups suffice, else the tenant groups are joined."""
    if isinstance(node, And) and not node.terms:
        return False  # the empty query
    if is_container_level(node):
        return True
    return isinstance(node, And) and any(is_container_level(t) for t in node.terms)


def highlight_terms(node: Node) -> list[str]:
    """Words and phrases a matching line contains (not those under a NOT), for the page to mark."""
    if isinstance(node, Text):
        return [node.value]
    if isinstance(node, And | Or):
        return [term for t in node.terms for term in highlight_terms(t)][:20]
    if isinstance(node, Not):
        return []
    return []


@dataclass
class Subscription:
    node: Node
    matches: Callable[[dict], bool] | None
    tenants: list[str]
    now: datetime
    by_container: bool
    snapshot: int
    containers: dict[int, dict] = field(default_factory=dict)
    told: set[int] = field(default_factory=set)  # containers the client has been described
    cursor: TailCursor = field(default_factory=TailCursor)
    refreshed_at: float = 0.0
    horizon: int = 0  # the id frontier the previous sweep read


class LiveTailConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.sub: Subscription | None = None
        self.joined: set[str] = set()
        self.sweeper: asyncio.Task | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.accept()

    async def disconnect(self, code):
        await self._unsubscribe()

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            await self._error("a message must be a JSON object")
            return
        kind = content.get("type", "subscribe")
        if kind == "subscribe":
            await self._subscribe(content)
        elif kind == "earlier":
            await self._earlier(content)
        else:
            await self._error(f"unknown message type {str(kind)[:40]!r}")

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
        except ValueError:  # JSON that does not decode
            await self._error("a message must be JSON")

    # --- subscribe ---------------------------------------------------------------------------
    async def _subscribe(self, content: dict) -> None:
        try:
            options = _subscribe_options(content)
            node = parse(options["query"])
        except QueryError as e:
            await self.send_json({"type": "error", "message": e.message, "position": e.position})
            return
        except ValueError as e:
            await self._error(str(e))
            return
        await self._unsubscribe()
        tenants = await database_sync_to_async(store.tenants_of)(self.scope["user"])
        now = datetime.now(UTC)
        sub = Subscription(
            node=node,
            # The empty query matches everything: skip building a row per line for it.
            matches=None if node == And(()) else compile_matcher(node, now),
            tenants=tenants,
            now=now,
            by_container=names_containers(node),
            snapshot=await database_sync_to_async(store.id_snapshot)(),
        )
        self.sub = sub
        containers = await database_sync_to_async(store.matching_containers)(node, tenants)
        resume = {k: v for k, v in options["resume"].items() if k in containers}
        fresh = await database_sync_to_async(store.floors_now)(
            [k for k in containers if k not in resume], sub.snapshot
        )
        for ckey, container in containers.items():
            sub.containers[ckey] = container
            if ckey in resume:
                sub.cursor.watch(ckey, floor=resume[ckey], prune_below=resume[ckey])
            else:
                # prune_below stays 0: a batch that held older ids and commits after this
                # point still arrives live and is shown.
                sub.cursor.watch(ckey, floor=fresh[ckey])
        sub.refreshed_at = time.monotonic()
        # Join before reading history: a batch committed meanwhile arrives both ways and the
        # cursor keeps one copy; joining after would lose it.
        if sub.by_container:
            await self._join([container_group(k) for k in containers])
        else:
            await self._join([tenant_group(t) for t in tenants])
        history = await self._history(sub, options)
        await self._send_lines(
            sub, [line for line in history if sub.cursor.take(line[0], line[1])], "history"
        )
        while await self._sweep(sub, catching_up=True):  # after a resume, before calling it live
            pass
        if self.sub is sub:
            await self.send_json(
                {"type": "live", "query": options["query"], "highlight": highlight_terms(node)}
            )
            self.sweeper = asyncio.create_task(self._sweep_forever(sub))

    async def _history(self, sub: Subscription, options: dict) -> list[list]:
        ckeys = [k for k in sub.containers if k not in options["resume"]]
        if not ckeys:
            return []
        if options["since"] is not None:
            return await database_sync_to_async(store.since)(
                sub.node, sub.tenants, ckeys, options["since"], MAX_RECENT, sub.now
            )
        if options["recent"]:
            return await database_sync_to_async(store.recent)(
                sub.node, sub.tenants, ckeys, options["recent"], sub.now
            )
        return []

    async def _unsubscribe(self) -> None:
        self.sub = None
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.sweeper
            self.sweeper = None
        for group in list(self.joined):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined.clear()

    async def _join(self, groups: list[str]) -> None:
        for group in groups:
            if group not in self.joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.joined.add(group)

    # --- live --------------------------------------------------------------------------------
    async def tail_lines(self, event: dict) -> None:
        sub = self.sub
        if sub is None:
            return
        received_ms = time.time() * 1000 if TRACE else 0.0
        out: list[list] = []
        for container in event.get("containers", []):
            ckey = container.get("ckey")
            if container.get("tenant") not in sub.tenants or not isinstance(ckey, int):
                continue  # never another tenant's lines, whatever group delivered them
            if not sub.cursor.watched(ckey) and (sub.by_container or not await self._adopt(sub, ckey)):
                continue
            known = sub.containers[ckey]
            for raw in event.get("lines", {}).get(str(ckey), []):
                line = from_fanout(ckey, raw)
                if sub.cursor.take(ckey, line[1]) and (
                    sub.matches is None or sub.matches(matcher_row(line, known))
                ):
                    out.append(line)
        if out and self.sub is sub:
            trace = None
            if TRACE:
                trace = dict(event.get("trace") or {}, received_ms=received_ms)
            await self._send_lines(sub, out, "live", trace)

    async def _adopt(self, sub: Subscription, ckey: int) -> bool:
        """A container that appeared after subscribing (tenant groups only)."""
        found = await database_sync_to_async(store.container)(ckey, sub.tenants)
        if found is None or self.sub is not sub:
            return False
        sub.containers[ckey] = found
        sub.cursor.watch(ckey, floor=sub.snapshot - 1)
        return True

    # --- refill from the store ---------------------------------------------------------------
    async def _sweep_forever(self, sub: Subscription) -> None:
        while self.sub is sub:
            await asyncio.sleep(SWEEP_EVERY_S)
            try:
                if time.monotonic() - sub.refreshed_at >= REFRESH_CONTAINERS_EVERY_S:
                    await self._refresh_containers(sub)
                await self._sweep(sub)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tail sweep failed; retrying")

    async def _refresh_containers(self, sub: Subscription) -> None:
        found = await database_sync_to_async(store.matching_containers)(sub.node, sub.tenants)
        sub.refreshed_at = time.monotonic()
        if self.sub is not sub:
            return
        new = [k for k in found if not sub.cursor.watched(k)]
        for ckey in new:
            sub.containers[ckey] = found[ckey]
            sub.cursor.watch(ckey, floor=sub.snapshot - 1)
        if sub.by_container:
            await self._join([container_group(k) for k in new])

    async def _sweep(self, sub: Subscription, catching_up: bool = False) -> bool:
        """Sends stored lines that neither history nor live delivered; True when truncated.

        The store counts its lines above the floor per container and writer batch; those
        counts are compared with the ids this socket took before asking (search/tail/cursor.py
        says why equal means complete). Only the batches that come up short are read id by
        id, so a sweep costs one grouped count while fan-out delivers everything.

        A periodic sweep looks only at batches reserved before the previous sweep: a batch
        that committed a moment ago is normally still on its way live, and reading it from the
        store would only race the live message (and cost a read of every row). Catching up
        after a resume looks at everything."""
        floors = sub.cursor.floors()
        taken = sub.cursor.taken_by_block()  # before the store is read
        frontier = await database_sync_to_async(store.id_snapshot)()
        horizon = frontier if catching_up else sub.horizon
        sub.horizon = frontier
        # The frontier is the first id of the newest reserved block: that block counts too.
        below = horizon + ID_BLOCK
        stored = await database_sync_to_async(store.block_counts)(floors, sub.tenants, below)
        if self.sub is not sub:
            return False
        short = [(ckey, block) for ckey, block, count in stored if count != taken[(ckey, block)]]
        pairs = []
        if short:
            pairs = await database_sync_to_async(store.ids_in_blocks)(short, floors, sub.tenants)
            if self.sub is not sub:
                return False
        truncated = len(pairs) >= store.SWEEP_LIMIT
        seen_up_to = pairs[-1][1] if truncated else horizon - 1
        now = time.monotonic()
        by_ckey: dict[int, list[int]] = {}
        for ckey, row_id in pairs:
            by_ckey.setdefault(ckey, []).append(row_id)
        missing = [i for ckey, ids in by_ckey.items() for i in sub.cursor.unseen(ckey, ids)]
        for ckey in sub.cursor.ckeys():
            sub.cursor.observed(ckey, max([seen_up_to, *by_ckey.get(ckey, [])]), now)
        if missing:
            rows = await database_sync_to_async(store.rows_by_id)(list(by_ckey), missing, sub.tenants)
            if self.sub is not sub:
                return False
            out = [
                line
                for line in rows
                if sub.cursor.take(line[0], line[1])
                and (sub.matches is None or sub.matches(matcher_row(line, sub.containers.get(line[0], {}))))
            ]
            await self._send_lines(sub, out, "refill")
        sub.cursor.settle(now)
        return truncated

    # --- history pages -----------------------------------------------------------------------
    async def _earlier(self, content: dict) -> None:
        sub = self.sub
        if sub is None:
            await self._error("subscribe first")
            return
        before = content.get("before")
        limit = content.get("limit", 500)
        if (
            not isinstance(before, dict)
            or not _is_int(before.get("ts_us"))
            or not _is_int(before.get("id"))
            or not _is_int(limit)
            or not 1 <= limit <= MAX_PAGE
        ):
            await self._error(f"earlier needs before={{ts_us, id}} (integers) and 1 <= limit <= {MAX_PAGE}")
            return
        lines = await database_sync_to_async(store.earlier)(
            sub.node,
            sub.tenants,
            list(sub.containers),
            (datetime_of(before["ts_us"]), before["id"]),
            limit,
            sub.now,
        )
        await self.send_json(
            {
                "type": "earlier",
                "containers": self._describe(sub, lines),
                "lines": lines,
                "more": len(lines) == limit,
            }
        )

    # --- sending -----------------------------------------------------------------------------
    def _describe(self, sub: Subscription, lines: list[list]) -> dict:
        new = {}
        for line in lines:
            ckey = line[0]
            if ckey not in sub.told and ckey in sub.containers:
                sub.told.add(ckey)
                new[str(ckey)] = public_container(sub.containers[ckey])
        return new

    async def _send_lines(self, sub: Subscription, lines: list[list], source: str, trace=None) -> None:
        for start in range(0, len(lines), SEND_CHUNK):
            chunk = lines[start : start + SEND_CHUNK]
            message = {
                "type": "lines",
                "source": source,
                "containers": self._describe(sub, chunk),
                "lines": chunk,
            }
            if trace is not None:
                message["trace"] = dict(trace, sent_ms=time.time() * 1000)
            await self.send_json(message)

    async def _error(self, message: str) -> None:
        await self.send_json({"type": "error", "message": message})


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _subscribe_options(content: dict) -> dict:
    query = content.get("query", "")
    if not isinstance(query, str):
        raise ValueError("query must be a string")
    recent = content.get("recent", 0)
    if not _is_int(recent) or not 0 <= recent <= MAX_RECENT:
        raise ValueError(f"recent must be an integer from 0 to {MAX_RECENT}")
    resume_in = content.get("resume") or {}
    if not isinstance(resume_in, dict) or len(resume_in) > 100_000:
        raise ValueError("resume must be an object {container key: last id}")
    resume = {}
    for key, value in resume_in.items():
        if not str(key).isdigit() or not _is_int(value) or value < 0:
            raise ValueError("resume must map container keys to the last id held (integers)")
        resume[int(key)] = value
    since = content.get("since")
    if since is not None:
        if _is_int(since) or isinstance(since, float):
            since = datetime.fromtimestamp(float(since), UTC)
        elif isinstance(since, str):
            since = datetime_of(rfc3339_to_ns(since) // 1000)
        else:
            raise ValueError("since must be RFC 3339 text or Unix seconds")
    return {"query": query, "recent": recent, "resume": resume, "since": since}
