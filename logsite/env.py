"""Typed readers for settings that come from the environment.

Every helper fails at start-up with the variable's name and the bad value, so a
typo in a deployment shows up as one clear line instead of a surprise later.
`*_FILE` variants let secrets come from mounted files (Docker/Kubernetes secrets).
"""

import os
from urllib.parse import parse_qs, unquote, urlencode, urlsplit


class ConfigError(RuntimeError):
    pass


def env_str(name: str, default: str = "") -> str:
    file_path = os.environ.get(name + "_FILE")
    if file_path:
        try:
            with open(file_path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            raise ConfigError(f"{name}_FILE={file_path!r} cannot be read: {e}") from e
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError as e:
        raise ConfigError(f"{name}={raw!r} is not an integer") from e
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} is above the maximum {maximum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_database_url(url: str) -> dict:
    """postgres://user:pass@host:port/name?sslmode=... -> Django DATABASES entry.

    A unix socket is given as `postgres:///name?host=/path/to/dir`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"DATABASE_URL must start with postgres:// (got {parts.scheme or 'no scheme'}://)")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ConfigError("DATABASE_URL names no database (postgres://user@host:port/NAME)")
    host = query.pop("host", None) or (unquote(parts.hostname) if parts.hostname else "")
    try:
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"DATABASE_URL has a bad port: {e}") from e
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(port or ""),
        "OPTIONS": query,
    }


def check_redis_url(name: str, url: str) -> str:
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"{name}={url!r} must be a redis://, rediss:// or unix:// URL")
    return url


def celery_broker_url(name: str, url: str) -> str:
    """A Redis URL as Celery's transport spells it.

    redis-py and channels-redis name a unix socket `unix:///path?db=N`; kombu knows no `unix`
    transport and wants `redis+socket:///path?virtual_host=N` instead.
    """
    parts = urlsplit(url)
    if parts.scheme == "redis+socket":
        return url
    check_redis_url(name, url)
    if parts.scheme != "unix":
        return url
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    params = {"virtual_host": query.pop("db", "0"), **query}
    return f"redis+socket://{parts.netloc}{parts.path}?{urlencode(params)}"


def load_or_create_secret(path) -> str:
    """A per-installation key kept beside the data, so a fresh install is never signed with a known key."""
    import secrets
    from pathlib import Path

    path = Path(path)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this install won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key
