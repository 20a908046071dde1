"""A served process freezes its heap out of full collections once built and again once warm."""

from __future__ import annotations

import gc

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import hub.runtime
from hub.runtime import FreezeWhenWarm, freeze_served_app


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # what the test froze goes back to the collector, for the rest of the session


def test_what_the_first_requests_build_is_frozen_once_the_process_is_warm(unfrozen, monkeypatch):
    freezes = []
    monkeypatch.setattr(hub.runtime, "freeze_startup_objects",
                        lambda real=hub.runtime.freeze_startup_objects: freezes.append(real()))
    app = FastAPI()
    built: list[list[int]] = []

    @app.get("/")
    def first_use() -> dict[str, int]:
        built.append([len(built)])  # a cache filled by a request, kept for the process's life
        return {"n": len(built)}

    freeze_served_app(app)
    app.user_middleware[0].kwargs["after"] = 3
    assert app.user_middleware[0].cls is FreezeWhenWarm
    at_start = gc.get_freeze_count()
    assert at_start > 0
    with TestClient(app) as client:
        for _ in range(2):
            client.get("/")
        tracked = {id(o) for o in gc.get_objects()}
        assert all(id(o) in tracked for o in built)  # not warm yet: walked by every full pass
        client.get("/")
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(o) in tracked for o in built)  # warm: frozen with the start-up heap
        assert gc.get_freeze_count() > at_start
        client.get("/")
    assert len(freezes) == 2  # built, then warm; once only
