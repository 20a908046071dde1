from tests.campaigns.segments.conftest import web  # noqa: F401  (the pages' TestClient)
