"""The suite's housekeeping in tests/conftest.py: the collector's frozen heap, remembered entry points."""

from __future__ import annotations

import gc
import weakref

import pytest

pytestmark = pytest.mark.any_store


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_test_starts_with_what_lived_before_it_frozen_and_its_own_cycles_collectable():
    assert gc.get_freeze_count() > 0
    kept = _Cycle()
    ref = weakref.ref(kept)
    del kept
    gc.collect()
    assert ref() is None


def test_a_remembered_entry_point_lookup_is_the_lookup_and_sees_a_new_sys_path(tmp_path, monkeypatch):
    from importlib.metadata import entry_points

    from hub import plugin

    assert plugin.entry_points is not entry_points  # the suite's remembered lookup
    assert list(plugin.entry_points(group="hub.channels")) == list(entry_points(group="hub.channels"))
    dist = tmp_path / "extra_channel-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-channel\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hub.channels]\nextra = tests.fakes.channel:FakeChannel\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "extra" in {ep.name for ep in plugin.entry_points(group="hub.channels")}
