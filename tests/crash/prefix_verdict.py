"""The verdict a crash image gets once each writer's recovered prefix is known, shared by the
crash-image tests: no acknowledged durable write lost, and no hole (a write missing while a
later one, or one that must precede it, survived)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol


class LoggedWrite(Protocol):
    index: int  # 1-based position in its writer's log
    writer: int
    mode: str  # its durability
    ops: Sequence[Any]
    issued: float  # when the writer issued it, on the test's clock
    acked: float  # when it was acknowledged (inf while not)


def assert_no_holes(
    logs: Mapping[int, Sequence[LoggedWrite]],
    cut: Mapping[int, tuple[int, int]],
    durable: tuple[str, ...],
    taken: float,
    describe: Callable[[Any], str],
) -> None:
    """Checks each writer's cut against every other's.

    Args:
        logs: each writer's writes in issue order.
        cut: writer -> (m, top): m writes recovered, and `top`, the largest prefix length the
            recovered state is consistent with (writes past m that change nothing).
        durable: the durabilities whose acknowledged writes must survive this crash.
        taken: when the image was taken, on the clock of `issued` and `acked`.
    """
    synced = [x for log in logs.values() for x in log if x.mode in durable and x.acked < taken]
    durable_from = max((x.issued for x in synced), default=-1)
    present_from = max((logs[w][m - 1].issued for w, (m, _) in cut.items() if m), default=-1)
    for w, log in logs.items():
        m, top = cut[w]
        acks = [x.acked for x in log]
        why = []
        own = max((x.index for x in synced if x.writer == w), default=0)
        if own > top:
            why.append(f"{describe(log[own - 1])} was acknowledged before the image")
        if bisect.bisect_left(acks, durable_from) > top:
            why.append(f"a {'/'.join(durable)} write acknowledged in time was issued after it")
        if bisect.bisect_left(acks, present_from) > top:
            why.append("a write that is present was issued after it was acknowledged")
        assert not why, f"{describe(log[top])} is missing (writer {w} kept {m}): {'; '.join(why)}"
