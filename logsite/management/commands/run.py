import asyncio
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ingest.native import build as native_build
from logsite.env import ConfigError, env_int, env_str
from logsite.runner import RunError
from logsite.runner.launcher import Launcher, WebAddress


class Command(BaseCommand):
    help = (
        "Run all of Logsite under one supervisor: web (ASGI), ingest, Celery worker and beat. "
        "Starts an embedded PostgreSQL and Redis for DATABASE_URL / REDIS_URL when they are not set."
    )
    requires_system_checks = []  # the children run them; a warning must not stop the supervisor
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument(
            "--host",
            default=env_str("LOGSITE_HOST", "127.0.0.1"),
            help="Web listen address (env LOGSITE_HOST, default 127.0.0.1; 0.0.0.0 for all interfaces).",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help="Web listen port (env LOGSITE_PORT, default 8000).",
        )

    def handle(self, *args, **options):
        try:
            port = options["port"] or env_int("LOGSITE_PORT", 8000, minimum=1, maximum=65535)
            stop_timeout = env_int("LOGSITE_STOP_TIMEOUT", 60, minimum=1)
        except ConfigError as e:
            raise CommandError(str(e)) from e
        if not 1 <= port <= 65535:
            raise CommandError(f"--port {port} is not a TCP port")
        self.build_native()
        launcher = Launcher(
            data_dir=Path(settings.LOGSITE_DATA_DIR).resolve(),
            web=WebAddress(options["host"], port),
            stop_timeout=stop_timeout,
        )
        try:
            status = asyncio.run(launcher.run())
        except RunError as e:
            raise CommandError(str(e)) from e
        if status:
            raise SystemExit(status)

    def build_native(self) -> None:
        """Compiles the write path's C loops when they are missing or stale; without a compiler
        ingest still runs, on its Python path."""
        try:
            if native_build.build():
                self.stdout.write(f"built {native_build.TARGET.name} (the write path's C loops)")
        except (subprocess.CalledProcessError, OSError) as e:
            self.stderr.write(f"ingest.native: build failed ({e}); ingest runs its Python path (slower)")
