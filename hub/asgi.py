"""`uvicorn hub.asgi:app` — the app built from the environment's settings."""

import gc

from hub.app import create_app

app = create_app()

# What is built by now (modules, routes, the ORM's mappers, the templates) lives as long as the
# process: moving it out of the collector's reach keeps the full collections that stall requests
# under load short (the webhook benchmark's tail latency). Only here, in a served process: tests
# build many apps and must be able to collect them.
gc.collect()
gc.freeze()
