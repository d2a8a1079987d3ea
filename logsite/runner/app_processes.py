"""The Logsite processes `manage.py run` supervises: the same commands docker-compose.yml runs."""

import sys

from django.conf import settings

from logsite.runner.supervisor import Spec

# Live-tail websockets stay open for as long as the browser tab does: close them after this
# long instead of waiting for every tab.
WEB_GRACEFUL_SHUTDOWN_S = 10


def web_argv(host: str, port: int) -> list[str]:
    # Django implements no ASGI lifespan events; "off" spares a warning at every start.
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "logsite.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--timeout-graceful-shutdown",
        str(WEB_GRACEFUL_SHUTDOWN_S),
    ]


def app_specs(env: dict[str, str], host: str, port: int) -> list[Spec]:
    python = sys.executable
    cwd = str(settings.BASE_DIR)
    celery = [python, "-m", "celery", "-A", "logsite"]
    argvs = {
        "web": web_argv(host, port),
        # SIGTERM makes ingest stop its receivers and commit or spool what it accepted.
        "ingest": [python, str(settings.BASE_DIR / "manage.py"), "ingest"],
        # SIGTERM is Celery's warm shutdown: running tasks finish, unstarted ones stay queued.
        "worker": [*celery, "worker", "--loglevel", "INFO"],
        "beat": [*celery, "beat", "--loglevel", "INFO", "--scheduler", settings.CELERY_BEAT_SCHEDULER],
    }
    return [Spec(name=name, argv=argv, env=env, cwd=cwd) for name, argv in argvs.items()]
