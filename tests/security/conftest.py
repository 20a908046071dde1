"""The workspace's TestClient fixture, shared with the security tests."""

from tests.web.conftest import web  # noqa: F401
