"""The admin of targets: secrets are write-only, a replay sends lines again from a time, the
status shows lag and why a target stopped; the status page is scoped to the user's tenants."""

import time

import pytest
from django.core.management import call_command
from django.test import Client
from django_celery_beat.models import PeriodicTask

from forward.dispatch import dispatch_due
from forward.models import ForwardState, Target
from forward.schedule import TASK_NAME
from tests.forward.runs import run_until_done
from tests.forward.targets import cls_target, received_lines
from tests.forward.writers import make_writer, records, write

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_ID = "AKIDsecretid0123456789"
SECRET_KEY = "very-secret-key-value-42"


def login(user, password) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


def form_data(tenant, **overrides) -> dict:
    data = {
        "name": "cls-main",
        "kind": "cls",
        "tenant": tenant.pk,
        "enabled": "on",
        "batch_lines": 20000,
        "batch_bytes": 4000000,
        "batch_wait_ms": 500,
        "cls_region": "ap-guangzhou",
        "cls_topic_id": "topic-1",
        "syslog_max_bytes": 8192,
        "tls_verify": "on",
        "new_cls_secret_id": SECRET_ID,
        "new_cls_secret_key": SECRET_KEY,
    }
    data.update(overrides)
    return data


def test_secrets_are_stored_but_never_shown_back(actors):
    admin = login(actors.admin, "root-password")
    response = admin.post("/admin/forward/target/add/", form_data(actors.tenant_a))
    assert response.status_code == 302, response.content.decode()[:3000]
    target = Target.objects.get(name="cls-main")
    assert (target.cls_secret_id, target.cls_secret_key) == (SECRET_ID, SECRET_KEY)
    assert target.cls_url == "https://ap-guangzhou.cls.tencentcs.com"

    page = admin.get(f"/admin/forward/target/{target.pk}/change/").content.decode()
    assert SECRET_KEY not in page
    assert SECRET_ID not in page
    assert "very…42" in page  # the hint

    # Saving with the secret fields empty keeps them; a new value replaces one.
    keep = form_data(actors.tenant_a, new_cls_secret_id="", new_cls_secret_key="")
    assert admin.post(f"/admin/forward/target/{target.pk}/change/", keep).status_code == 302
    target.refresh_from_db()
    assert (target.cls_secret_id, target.cls_secret_key) == (SECRET_ID, SECRET_KEY)
    replace = form_data(actors.tenant_a, new_cls_secret_id="", new_cls_secret_key="rotated-key")
    assert admin.post(f"/admin/forward/target/{target.pk}/change/", replace).status_code == 302
    target.refresh_from_db()
    assert (target.cls_secret_id, target.cls_secret_key) == (SECRET_ID, "rotated-key")


def test_the_admin_refuses_incomplete_targets(actors):
    admin = login(actors.admin, "root-password")
    response = admin.post(
        "/admin/forward/target/add/",
        form_data(actors.tenant_a, new_cls_secret_key="", cls_topic_id="", template="{oops}"),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "needs a SecretId and a SecretKey" in page
    assert "needs a topic id" in page
    assert "unknown" in page
    drain = form_data(actors.tenant_a, name="drain", kind="syslog", syslog_url="udp://x:514")
    page = admin.post("/admin/forward/target/add/", drain).content.decode()
    assert "tcp:// or tls://" in page
    assert not Target.objects.exists()


def test_replay_sends_lines_again_from_a_time(actors, clean_logs, standin, tmp_path):
    target = cls_target(standin, actors.tenant_a)
    writer = make_writer(tmp_path, "writer-1")
    write(writer, records("old", 10))
    time.sleep(0.05)
    since_ns = time.time_ns()
    time.sleep(0.05)
    write(writer, records("new", 10))
    assert run_until_done(target).status == "caught_up"
    assert len(received_lines(standin)) == 20

    admin = login(actors.admin, "root-password")
    changelist = "/admin/forward/target/"
    ask = admin.post(changelist, {"action": "replay_from_time", "_selected_action": [target.pk]})
    assert ask.status_code == 200
    assert "Replay lines from" in ask.content.decode()
    since = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since_ns // 10**9))
        + f".{since_ns // 1000 % 10**6:06d}"
    )
    done = admin.post(
        changelist,
        {"action": "replay_from_time", "_selected_action": [target.pk], "apply": "1", "since": since},
    )
    assert done.status_code == 302

    assert run_until_done(target).status == "caught_up"
    lines = received_lines(standin)
    assert lines[20:] == [f"new {i}" for i in range(10)]
    write(writer, records("later", 5))
    run_until_done(target)
    assert received_lines(standin)[30:] == [f"later {i}" for i in range(5)]
    state = ForwardState.objects.get(pk=target.pk)
    assert state.replay_from is None


def test_a_final_error_pauses_the_target_and_says_why(actors, clean_logs, standin, tmp_path):
    target = cls_target(standin, actors.tenant_a, topic="no-such-topic")
    write(make_writer(tmp_path, "writer-1"), records("x", 10))
    assert run_until_done(target).status == "paused"
    target.refresh_from_db()
    assert target.paused
    assert "TopicNotExist" in target.pause_reason

    admin = login(actors.admin, "root-password")
    page = admin.get("/admin/forward/target/").content.decode()
    assert "paused: HTTP 404 TopicNotExist" in page
    # Fixed and resumed: the lines that were refused arrive, nothing was skipped.
    Target.objects.filter(pk=target.pk).update(cls_topic_id="topic-1")
    admin.post("/admin/forward/target/", {"action": "resume", "_selected_action": [target.pk]})
    assert run_until_done(target).status == "caught_up"
    assert received_lines(standin) == [f"x {i}" for i in range(10)]


def test_the_status_page_shows_only_the_users_tenants(actors, clean_logs, standin):
    cls_target(standin, actors.tenant_a, name="target-a")
    cls_target(standin, actors.tenant_b, name="target-b")
    alice = login(actors.alice, "alice-password")
    page = alice.get("/forward/status").content.decode()
    assert "target-a" in page
    assert "target-b" not in page
    data = alice.get("/api/v1/forward/status").json()
    assert [t["name"] for t in data["targets"]] == ["target-a"]
    assert {"lag_lines", "lag_seconds", "paused", "last_error"} <= set(data["targets"][0])
    assert Client().get("/forward/status").status_code == 302  # login required


def test_setup_creates_the_beat_schedule_once(actors, monkeypatch):
    monkeypatch.setenv("LOGSITE_ADMIN_PASSWORD", "a-long-enough-password")
    call_command("setup", verbosity=0)
    task = PeriodicTask.objects.get(name=TASK_NAME)
    task.interval.every = 7  # an admin's change survives the next setup
    task.interval.save()
    call_command("setup", verbosity=0)
    assert PeriodicTask.objects.filter(task="forward.forward_due").count() == 1
    assert PeriodicTask.objects.get(name=TASK_NAME).interval.every == 7


def test_only_due_targets_are_queued_and_only_once(actors, clean_logs, standin, tmp_path):
    active = cls_target(standin, actors.tenant_a, name="active")
    paused = cls_target(standin, actors.tenant_a, name="paused", paused=True)
    waiting = cls_target(standin, actors.tenant_a, name="waiting")
    ForwardState.objects.filter(pk=waiting.pk).update(next_attempt_at="2999-01-01T00:00:00Z")
    queued: list[int] = []
    assert dispatch_due(queued.append) == []  # nothing stored yet: every target is idle
    write(make_writer(tmp_path, "writer-1"), records("x", 5))
    assert dispatch_due(queued.append) == [active.id]
    assert dispatch_due(queued.append) == []  # already queued
    assert queued == [active.id]
    assert paused.id not in queued


def test_tenant_admins_manage_only_their_tenants_targets(actors, clean_logs, standin):
    mine = cls_target(standin, actors.tenant_a, name="target-a")
    theirs = cls_target(standin, actors.tenant_b, name="target-b")
    alice = login(actors.alice, "alice-password")  # admin of tenant A, not staff
    page = alice.get("/admin/forward/target/").content.decode()
    assert "target-a" in page
    assert "target-b" not in page
    assert alice.get(f"/admin/forward/target/{mine.pk}/change/").status_code == 200
    assert alice.get(f"/admin/forward/target/{theirs.pk}/change/").status_code in (302, 404)
    bob = login(actors.bob, "bob-password")  # a viewer
    assert bob.get("/admin/forward/target/").status_code in (302, 403)


def test_the_ingest_status_page_shows_forwarding_lag(actors, clean_logs, standin, tmp_path):
    cls_target(standin, actors.tenant_a, name="target-a")
    write(make_writer(tmp_path, "writer-1"), records("x", 12))
    from ingest.status import forwarding_lags

    (lag,) = forwarding_lags(["tenant-a"])
    assert (lag["name"], lag["tenant"], lag["pending_rows"]) == ("target-a", "tenant-a", 12)
    assert lag["lag_seconds"] >= 0
    assert forwarding_lags(["tenant-b"]) == []
