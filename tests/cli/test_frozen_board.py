"""A device that freezes (the virtual board's process stopped with SIGSTOP) ends the
recording cleanly: the recorder notices the silence, closes the recording readable, exits
with the device code and leaves no board process behind — no 30 s wait, no traceback."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from spikeforge.host.errors import ExitCode

URL = "sim://?channels=4&identity_interval_frames=16"   # the build of tests/sim


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_a_frozen_board_ends_the_recording_with_the_device_code_and_no_orphan(tmp_path):
    out = tmp_path / "rec"
    process = subprocess.Popen(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", URL, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    board = None
    try:
        deadline = time.monotonic() + 600      # a build of the board, if not cached
        data = out / "Record Node 101/experiment1/recording1/continuous"
        while not any(p.stat().st_size > 30_000 for p in data.rglob("continuous.dat")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the recorder wrote nothing"
            time.sleep(0.02)
        (board,) = _children(process.pid)
        os.kill(board, signal.SIGSTOP)
        frozen = time.monotonic()
        stdout, stderr = process.communicate(timeout=40)
        took = time.monotonic() - frozen
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        if board is not None and _alive(board):
            os.kill(board, signal.SIGKILL)
            raise AssertionError("the board process was left behind")
    assert process.returncode == ExitCode.DEVICE, stderr
    assert "Traceback" not in stderr and "TimeoutExpired" not in stderr, stderr
    assert "stopped sending" in stderr
    assert took < 15, f"took {took:.1f} s to end"
    meta = json.loads(next(out.rglob("spikeforge.json")).read_text())
    assert meta["ended"].startswith("device error")
