"""The container facts dockerd sends in StartLogging's `Info` (Go field names, no JSON tags)."""

from dataclasses import dataclass
from typing import Any


class InfoError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    container_id: str
    name: str  # without dockerd's leading "/"
    image_name: str
    image_id: str
    daemon_name: str
    env: dict[str, str]
    labels: dict[str, str]
    log_opts: dict[str, str]

    @property
    def short_id(self) -> str:
        return self.container_id[:12]

    @classmethod
    def from_json(cls, info: Any) -> "ContainerInfo":
        if not isinstance(info, dict):
            raise InfoError("Info must be an object")
        container_id = info.get("ContainerID")
        if not isinstance(container_id, str) or not container_id:
            raise InfoError("Info.ContainerID is missing")
        env: dict[str, str] = {}
        for item in info.get("ContainerEnv") or []:
            if isinstance(item, str):
                key, _, value = item.partition("=")
                env[key] = value
        return cls(
            container_id=container_id,
            name=_text(info.get("ContainerName")).lstrip("/"),
            image_name=_text(info.get("ContainerImageName")),
            image_id=_text(info.get("ContainerImageID")),
            daemon_name=_text(info.get("DaemonName")) or "docker",
            env=env,
            labels=_string_map(info.get("ContainerLabels")),
            log_opts=_string_map(info.get("Config")),
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}
