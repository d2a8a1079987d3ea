"""Container keys: one `containers` row per (tenant, container id), written once, not per line.

The writer keeps a cache so that a batch costs no container query at all once its containers
are known; metadata changes (a renamed container) and a coarse last_seen are written back.
"""

import time

from ingest.normalize import ContainerMeta

LAST_SEEN_EVERY_S = 60

# The driver is looked up rather than taken as given: lines of a driver deleted while they were
# queued must not fail the foreign key (and with it their whole batch); they lose the link only.
UPSERT_SQL = """
INSERT INTO containers
    (tenant, container_id, service, name, image, host, labels, driver_id, first_seen, last_seen)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, (SELECT id FROM ingest_driver WHERE id = %s), now(), now())
ON CONFLICT (tenant, container_id) DO UPDATE SET
    service = COALESCE(NULLIF(EXCLUDED.service, ''), containers.service),
    name = COALESCE(NULLIF(EXCLUDED.name, ''), containers.name),
    image = COALESCE(NULLIF(EXCLUDED.image, ''), containers.image),
    host = COALESCE(NULLIF(EXCLUDED.host, ''), containers.host),
    labels = CASE WHEN EXCLUDED.labels = '{}'::jsonb THEN containers.labels ELSE EXCLUDED.labels END,
    driver_id = COALESCE(EXCLUDED.driver_id, containers.driver_id),
    last_seen = now()
RETURNING id
"""

TENANT_SQL = (
    "INSERT INTO ingest_tenant (slug, name, created_at) VALUES (%s, '', now()) ON CONFLICT (slug) DO NOTHING"
)


class ContainerKeys:
    def __init__(self):
        self._keys: dict[tuple[str, str], tuple[int, ContainerMeta, float]] = {}
        self._tenants: set[str] = set()

    def resolve(self, cur, metas: list[ContainerMeta]) -> list[int]:
        now = time.monotonic()
        ckeys = []
        for meta in metas:
            key = (meta.tenant, meta.container_id)
            known = self._keys.get(key)
            if known is not None and known[1] == meta and now - known[2] < LAST_SEEN_EVERY_S:
                ckeys.append(known[0])
                continue
            if meta.tenant not in self._tenants:
                cur.execute(TENANT_SQL, (meta.tenant,))
                self._tenants.add(meta.tenant)
            cur.execute(
                UPSERT_SQL,
                (
                    meta.tenant,
                    meta.container_id,
                    meta.service,
                    meta.name,
                    meta.image,
                    meta.host,
                    meta.labels_json,
                    meta.driver_id,
                ),
            )
            ckey = cur.fetchone()[0]
            self._keys[key] = (ckey, meta, now)
            ckeys.append(ckey)
        return ckeys

    def forget(self) -> None:
        """After a reconnect the cache may name rows that retention removed meanwhile."""
        self._keys.clear()
        self._tenants.clear()
