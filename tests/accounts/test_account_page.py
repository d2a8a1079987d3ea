import re

import pytest

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_new_api_token_is_shown_once_and_then_only_as_a_hint(client, actors):
    client.force_login(actors.eve)
    response = client.post("/account/", {"name": "laptop cli"})
    assert "no-store" in response["Cache-Control"]
    clear = re.search(r'id="new-token">(lsu_[A-Za-z0-9_-]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get(user=actors.eve)
    assert token.hint == clear[:8] + "…"
    page = client.get("/account/").content.decode()
    assert clear not in page
    assert token.hint in page
    assert "tenant-b" in page
    # the token works as a login for the API, as eve
    client.logout()
    status = client.get("/api/v1/status", HTTP_AUTHORIZATION=f"Bearer {clear}")
    assert status.status_code == 200
    assert client.get("/api/v1/status").status_code == 302  # without it: the login page


def test_users_revoke_only_their_own_tokens(client, actors):
    mine, clear = ApiToken.issue(actors.eve, "ci")
    theirs, _ = ApiToken.issue(actors.alice, "alice's")
    client.force_login(actors.eve)
    assert client.post(f"/account/tokens/{theirs.pk}/revoke").status_code == 404
    assert ApiToken.objects.filter(pk=theirs.pk).exists()
    assert client.get(f"/account/tokens/{mine.pk}/revoke").status_code == 405
    assert client.post(f"/account/tokens/{mine.pk}/revoke").status_code == 302
    assert not ApiToken.objects.filter(pk=mine.pk).exists()
    client.logout()
    assert client.get("/api/v1/status", HTTP_AUTHORIZATION=f"Bearer {clear}").status_code == 302


def test_every_new_page_needs_a_login(client, db):
    for url in (
        "/account/",
        "/status/",
        "/api/v1/status",
        "/drivers/1/connect/",
        "/admin/ingest/multilinerule/",
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "login" in response["Location"], url
    assert client.get("/metrics").status_code == 401
