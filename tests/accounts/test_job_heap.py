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
    gc.freeze()  # what hub.app.freeze_startup_objects did when the process started
    try:
        with long_lived_frozen():
            pass
        assert gc.get_freeze_count() > 0, "the job undid the served process's start-up freeze"
    finally:
        gc.unfreeze()
