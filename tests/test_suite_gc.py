"""The suite's garbage-collector housekeeping (tests/conftest.py, LongLivedObjectsFrozen)."""

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
