"""The REST API under /api/v1: one router per domain, included here."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api import accounts, admin, contacts, deliveries, events, live, privacy, tasks

api_router = APIRouter(prefix="/api/v1")
for _module in (contacts, accounts, events, tasks, deliveries, live, admin, privacy):
    api_router.include_router(_module.router)
