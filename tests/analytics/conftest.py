"""The workspace's fixtures (a signed-in TestClient, a live server and Chromium) for the dashboards."""

from tests.web.conftest import agent_page, browser, live_server, new_page, web  # noqa: F401
