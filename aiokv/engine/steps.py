"""Pure work in steps: a generator that yields between bounded steps and returns its result.

Builders that may run long (filters, table tails) are written this way so that the engine can
drive them on the event loop with a yield between steps (flush.drive); tests and small jobs run
them straight through with `run_to_end`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

_T = TypeVar("_T")


def run_to_end(gen: Generator[None, None, _T]) -> _T:
    """Runs every step of `gen` and returns what it returns.

    >>> def steps():
    ...     yield
    ...     return 7
    >>> run_to_end(steps())
    7
    """
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            result: _T = stop.value
            return result
