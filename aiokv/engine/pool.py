"""Running a blocking call in the database's thread pool without starving it of the GIL.

Measured (CPython 3.11, asyncio and uvloop): while the event loop is busy with Python work
between short suspensions (a get loop that yields every thousand gets), a pool job that makes a
few system calls took 300-600 ms with asyncio and 50-80 ms with uvloop, instead of 1 ms.  Each
system call releases the GIL, and getting it back is the problem: the loop thread releases
and retakes the GIL around every poll of its selector, which counts as a switch, so the
waiting thread's timeout never asks the loop to drop it, and the loop usually wins the retake.

So while a job is in flight, a timer on the loop sleeps for GIL_GIVE_S every GIL_TICK_S: a
real release that lets the pool thread take the GIL and run to its next system call.  Jobs
that finish within GIL_TICK_S (a WAL fdatasync, at a few hundred microseconds) never see the
timer.  Measured with the same busy loop: 2-4 ms a job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

_T = TypeVar("_T")
GIL_TICK_S = 0.001  # how often the loop gives the GIL away while a pool job is in flight
GIL_GIVE_S = 0.00005  # for how long: 5% of the loop's time, only while jobs are in flight


async def run_in_pool(pool: Executor, fn: Callable[..., _T], *args: Any) -> _T:
    """`loop.run_in_executor(pool, fn, *args)`, with the loop yielding the GIL meanwhile."""
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(pool, fn, *args)
    timer: list[asyncio.TimerHandle] = []
    timer.append(loop.call_later(GIL_TICK_S, _give, loop, fut, timer))
    try:
        return await fut
    finally:
        timer[0].cancel()


def _give(
    loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], timer: list[asyncio.TimerHandle]
) -> None:
    if fut.done():
        return
    time.sleep(GIL_GIVE_S)  # releases the GIL for real (the pool thread takes it)
    timer[0] = loop.call_later(GIL_TICK_S, _give, loop, fut, timer)
