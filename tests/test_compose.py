"""docker-compose.yml and the Dockerfile, checked as data (images cannot be pulled here).

The compose services must run the same commands as `manage.py run`, so the two ways of running
Logsite cannot drift apart unnoticed.
"""

import re
from pathlib import Path

import yaml
from django.conf import settings

from logsite.runner.app_processes import app_specs

REPO = Path(__file__).resolve().parents[1]
LOGSITE_SERVICES = {"setup", "web", "ingest", "worker", "beat"}


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def normalised(argv: list[str]) -> list[str]:
    """A command without its interpreter path: `python -m celery` == `celery`, manage.py by name."""
    if Path(argv[0]).name.startswith("python"):
        argv = argv[1:]
    if argv[:2] == ["-m", "celery"]:
        argv = argv[1:]
    return [Path(a).name if a.endswith("manage.py") else a for a in argv]


def test_it_has_every_service():
    assert set(compose()["services"]) == {"postgres", "redis"} | LOGSITE_SERVICES


def test_it_runs_the_commands_that_manage_py_run_runs():
    services = compose()["services"]
    for spec in app_specs({}, "0.0.0.0", 8000):
        assert normalised(services[spec.name]["command"]) == normalised(spec.argv), spec.name
    assert normalised(services["setup"]["command"]) == ["manage.py", "setup"]


def test_it_wires_every_logsite_service_to_the_same_services_and_data():
    services = compose()["services"]
    for name in LOGSITE_SERVICES:
        service = services[name]
        env = service["environment"]
        assert service["build"]["context"] == "."
        assert service["build"]["args"]["PYTHON_IMAGE"] == "${PYTHON_IMAGE:-python:3.11-slim}"
        assert re.fullmatch(
            r"postgres://logsite:\$\{POSTGRES_PASSWORD:-logsite\}@postgres:5432/logsite", env["DATABASE_URL"]
        )
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert f"logsite-data:{env['LOGSITE_DATA_DIR']}" in service["volumes"]
    for name in LOGSITE_SERVICES - {"setup"}:
        assert services[name]["depends_on"] == {"setup": {"condition": "service_completed_successfully"}}
    assert services["setup"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }


def test_it_keeps_the_spool_of_ingest_across_container_re_creation():
    ingest = compose()["services"]["ingest"]
    assert ingest["environment"]["LOGSITE_WRITER_NAME"] == "ingest-1"
    assert ingest["stop_grace_period"] == "60s"


def test_it_publishes_web_and_the_example_driver_ports():
    services = compose()["services"]
    assert services["web"]["ports"] == ["${LOGSITE_WEB_PORT:-8000}:8000"]
    assert services["ingest"]["ports"] == [
        "${LOGSITE_HTTP_PUSH_PORT:-8514}:8514",
        "${LOGSITE_ZMQ_PORT:-6362}:6362",
    ]


def test_it_uses_postgres_15_or_newer_and_plain_image_names():
    services = compose()["services"]
    assert int(services["postgres"]["image"].split(":")[1]) >= 15
    dockerfile = (REPO / "Dockerfile").read_text()
    images = [s["image"] for s in services.values()]
    images += re.findall(r"^ARG PYTHON(?:_BUILD)?_IMAGE=(\S+)$", dockerfile, re.M)
    assert "python:3.11-slim" in images
    for image in images:
        # "name:tag" only: a first path part with a dot or a port would name a registry host.
        assert not re.match(r"[^/]*[.:][^/]*/", image), image
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{PYTHON_BUILD_IMAGE\} AS native$", dockerfile, re.M)


def test_it_matches_the_beat_scheduler_of_settings():
    beat = compose()["services"]["beat"]["command"]
    assert beat[beat.index("--scheduler") + 1] == settings.CELERY_BEAT_SCHEDULER
