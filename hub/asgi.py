"""`uvicorn hub.asgi:app` — the app built from the environment's settings."""

from hub.app import create_app
from hub.runtime import freeze_served_app

app = create_app()
freeze_served_app(app)
