import pytest

pytestmark = pytest.mark.django_db


def test_it_redirects_anonymous_pages_to_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302


def test_it_keeps_healthz_public(client):
    assert client.get("/healthz").status_code == 200


def test_it_serves_the_login_page(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content
