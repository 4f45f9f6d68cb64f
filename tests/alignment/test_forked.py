"""alignment.forked: one function in a forked helper, waited for or stopped."""

from __future__ import annotations

import os
import sys
import time

import pytest

from alignment.errors import CorpusError
from alignment.forked import ForkedJob, HelperDied

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is Linux-only here")


def test_the_result_crosses_back_and_the_parent_memory_is_inherited() -> None:
    big = list(range(100_000))  # inherited by the fork, not pickled
    job = ForkedJob(lambda n: (sum(big[:n]), os.getpid()), 10)
    total, pid = job.result()
    job.close()
    assert total == 45 and pid != os.getpid()


def test_the_helpers_error_is_raised_in_the_parent() -> None:
    def bad() -> None:
        raise CorpusError("c.tsv", 4, "no tab", "add one")

    job = ForkedJob(bad)
    with pytest.raises(CorpusError, match=r"^c\.tsv:4: no tab"):
        job.result()
    job.close()


def test_a_helper_that_dies_is_told_apart() -> None:
    job = ForkedJob(os._exit, 5)
    with pytest.raises(HelperDied, match="exit code 5") as info:
        job.result()
    assert info.value.exitcode == 5
    job.close()


def test_close_stops_a_running_helper() -> None:
    job = ForkedJob(time.sleep, 60)
    start = time.monotonic()
    job.close()
    job.close()  # twice is harmless
    assert time.monotonic() - start < 30
    assert not job._helper.is_alive()
