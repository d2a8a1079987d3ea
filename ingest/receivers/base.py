"""What every receiver shares: the driver snapshot it serves and its counters."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class DriverConfig:
    """A plain snapshot of an `ingest.models.Driver`, so receivers never touch the ORM."""

    id: int
    name: str
    kind: str
    bind: str
    tenant: str | None
    token_hash: str
    options: dict = field(default_factory=dict, hash=False, compare=True)
    updated_at: datetime | None = None

    @classmethod
    def from_model(cls, driver) -> "DriverConfig":
        return cls(
            id=driver.id,
            name=driver.name,
            kind=driver.kind,
            bind=driver.bind,
            tenant=driver.tenant.slug if driver.tenant_id else None,
            token_hash=driver.token_hash,
            options=dict(driver.options or {}),
            updated_at=driver.updated_at,
        )


@dataclass
class ReceiverStats:
    received: int = 0
    bytes: int = 0
    malformed: int = 0
    dropped: int = 0
    last_error: str = ""

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "bytes": self.bytes,
            "malformed": self.malformed,
            "dropped": self.dropped,
            "last_error": self.last_error,
        }


class Receiver:
    """Base class: subclasses implement start() and stop() for one driver."""

    kind = ""
    # Set by the ingest service when several ingest processes share this driver's port.
    reuse_port = False

    def __init__(self, driver: DriverConfig, pipeline):
        self.driver = driver
        self.pipeline = pipeline
        self.stats = ReceiverStats()

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def malformed(self, reason: str) -> None:
        self.stats.malformed += 1
        self.stats.last_error = reason[:500]
