"""A kill -9 test's child process: it opens its store with the engine named by $AIOKV_ENGINE,
prints "OPEN" once it is open, then one line
"<mode> <write id>" per acknowledged write; a thread reads them into a queue so that the test
can stop waiting at a deadline and kill the child at any instant."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class AckingChild:
    """`script path round seed` running under this interpreter, with the project importable."""

    def __init__(
        self, script: Path, path: Path, round_: int, seed: int, stderr: Any, engine: str = "lsm"
    ) -> None:
        env = dict(os.environ)
        env["AIOKV_ENGINE"] = engine  # the store's engine, for the child's aiokv.open
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(path), str(round_), str(seed)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=ROOT,
            env=env,
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.acks: list[tuple[str, str]] = []  # (mode, write id), in acknowledgement order
        self.opened = False

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _take(self, line: bytes) -> None:
        if not line.endswith(b"\n"):
            return  # cut short by the kill: not an acknowledgement
        text = line.decode().strip()
        if text == "OPEN":
            self.opened = True
        else:
            mode, wid = text.split()
            self.acks.append((mode, wid))

    def wait_for_acks(self, count: int, deadline: float) -> None:
        """Reads lines until OPEN and `count` acknowledgements, EOF or the deadline (a
        time.monotonic() value)."""
        while not self.opened or len(self.acks) < count:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            if line is None:
                return
            self._take(line)

    def kill(self) -> int:
        """Kills the child with SIGKILL, reads every line it printed; returns its exit status."""
        self.proc.send_signal(signal.SIGKILL)
        status = self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        assert not self._reader.is_alive(), "the child's stdout did not close"
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:  # wait_for_acks already read the end
                break
            if line is None:
                break
            self._take(line)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return status
