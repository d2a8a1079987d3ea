from tests.search.tail.support import channel_prefix, pusher  # noqa: F401 - shared fixtures
