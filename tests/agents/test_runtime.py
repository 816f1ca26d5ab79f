"""tune_allocator: glibc's malloc thresholds are raised on Linux, nothing is done elsewhere."""
import sys

import pytest

from vid2act.agents.runtime import tune_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tune_allocator_takes_effect_on_glibc():
    assert tune_allocator() is True
    assert tune_allocator(mmap_threshold=64 * 2**20, trim_threshold=2**30, top_pad=2**20) is True



def test_tune_allocator_changes_nothing_off_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert tune_allocator() is False
