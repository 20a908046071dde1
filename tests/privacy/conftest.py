"""The workspace's TestClient fixture, for the privacy page's tests."""

from tests.web.conftest import web  # noqa: F401
