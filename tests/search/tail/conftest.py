from tests.search.tail.support import channel_prefix, pusher  # noqa: F401 - shared fixtures
from tests.search.tail.web import web  # noqa: F401 - shared fixture
