"""One function run in a forked helper process, beside the work of the parent.

The parent goes on with its own work and later waits for the helper's result
(:meth:`ForkedJob.result`), or stops it (:meth:`ForkedJob.close`) when it fails meanwhile,
so that a failed run does not wait for work nobody will read. The helper inherits the
parent's memory (fork), so large inputs are not pickled; only the result crosses back,
through a pipe.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class HelperDied(RuntimeError):
    """The helper process ended without sending a result (killed, out of memory, ``os._exit``)."""

    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"the helper process stopped with exit code {exitcode} before it sent its result")
        self.exitcode = exitcode


def _run_helper(fn: Callable[..., Any], args: tuple[Any, ...], niceness: int, send: Connection) -> None:
    if niceness:
        os.nice(niceness)
    try:
        result: tuple[bool, Any] = (True, fn(*args))
    except BaseException as exc:  # not handled here: sent to the parent, which raises it
        result = (False, exc)
    send.send(result)
    send.close()


class ForkedJob(Generic[T]):
    """``fn(*args)`` in a forked helper, started at once (at ``niceness`` above the
    parent's: 19 takes only the cycles the parent leaves idle). Forking needs Linux
    (:func:`alignment.parallel_tokenize.can_fork_helpers` says whether it is worth it)."""

    def __init__(self, fn: Callable[..., T], *args: Any, niceness: int = 0) -> None:
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)
        self._helper = ctx.Process(target=_run_helper, args=(fn, args, niceness, send), daemon=True)
        self._helper.start()
        send.close()
        self._closed = False

    def result(self) -> T:
        """Wait for the helper's return value; its exception is raised here, and
        :class:`HelperDied` when it ended without sending either."""
        try:
            ok, value = self._recv.recv()
        except EOFError:
            self._helper.join()
            raise HelperDied(self._helper.exitcode) from None
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the helper if it still runs, and release it (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        if self._helper.is_alive():
            self._helper.terminate()
        self._helper.join()
        self._recv.close()
