import pytest
from kombu.utils.url import url_to_parts

from logsite.env import ConfigError, celery_broker_url, parse_database_url


def test_it_spells_a_unix_socket_redis_url_the_way_celery_reads_it():
    url = celery_broker_url("CELERY_BROKER_URL", "unix:///var/run/redis.sock?db=3")
    assert url == "redis+socket:///var/run/redis.sock?virtual_host=3"


def test_it_defaults_the_unix_socket_database_to_0():
    assert celery_broker_url("X", "unix:///r.sock").endswith("?virtual_host=0")


def test_it_keeps_a_quoted_socket_path_readable_by_kombu():
    url = celery_broker_url("X", "unix:///tmp/a%20b/redis.sock?db=1")
    parts = url_to_parts(url.removeprefix("redis+"))
    assert (parts.scheme, "/" + parts.path) == ("socket", "/tmp/a b/redis.sock")
    assert parts.query == {"virtual_host": "1"}


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/1", "rediss://h:6380/0", "redis+socket:///r.sock"])
def test_it_leaves_urls_celery_reads_already(url):
    assert celery_broker_url("X", url) == url


def test_it_rejects_other_schemes_by_name():
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL"):
        celery_broker_url("CELERY_BROKER_URL", "amqp://guest@localhost//")


def test_it_reads_the_embedded_postgres_socket_url():
    db = parse_database_url("postgres://postgres@/logsite?host=/srv/logsite%20data/var/postgres")
    assert (db["NAME"], db["USER"], db["PORT"]) == ("logsite", "postgres", "")
    assert db["HOST"] == "/srv/logsite data/var/postgres"
