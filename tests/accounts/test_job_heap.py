"""keyaccounts.batch.long_lived_frozen: the recompute jobs' heap freeze ends as it found the process."""

from __future__ import annotations

import gc

import pytest

from keyaccounts.batch import long_lived_frozen

pytestmark = pytest.mark.any_store


def test_a_job_unfreezes_what_it_froze():
    gc.unfreeze()
    with long_lived_frozen():
        assert gc.get_freeze_count() > 0
        with long_lived_frozen():  # a second job at once: the heap stays frozen until both end
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_a_job_keeps_a_served_process_start_up_freeze():
    gc.freeze()  # what hub.runtime.freeze_startup_objects did when the process started
    try:
        with long_lived_frozen():
            pass
        assert gc.get_freeze_count() > 0, "the job undid the served process's start-up freeze"
    finally:
        gc.unfreeze()


def test_a_full_collection_only_where_the_freeze_is_kept():
    """Collecting first is what keeps garbage out of a freeze that outlives the job (a served
    process); where the job's end unfreezes everything it would be a walk of the whole heap for nothing."""
    full = []

    def started(phase, info):
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    gc.unfreeze()
    gc.callbacks.append(started)
    try:
        with long_lived_frozen():
            pass
        assert not full
        gc.freeze()
        with long_lived_frozen():
            pass
        assert full
    finally:
        gc.callbacks.remove(started)
        gc.unfreeze()
