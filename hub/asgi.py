"""`uvicorn hub.asgi:app` — the app built from the environment's settings."""

from hub.app import create_app
from hub.runtime import freeze_startup_objects

app = create_app()
freeze_startup_objects()
