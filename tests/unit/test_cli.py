"""The `aiokv` command: `serve` runs the durable-core demo until the DynamoDB endpoint lands."""

from __future__ import annotations

import subprocess
import sys

from aiokv.cli import main


def test_serve_demo_writes_reopens_and_reads_back(tmp_path, capsys):
    data = str(tmp_path / "data")
    assert main(["serve", "--data", data, "--count", "20"]) == 0
    assert main(["serve", "--data", data, "--count", "20"]) == 0
    out = capsys.readouterr().out
    assert "run 0" in out and "run 1" in out
    assert "40 demo keys in the store" in out
    assert "MISSING" not in out


def test_serve_on_a_file_path_fails_with_a_clear_message(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert main(["serve", "--data", str(path), "--count", "1"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_python_dash_m_aiokv_runs_the_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "aiokv", "serve", "--data", str(tmp_path / "d"), "--count", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "read back 5" in proc.stdout
