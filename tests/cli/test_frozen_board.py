"""A device that freezes (the virtual board's process stopped with SIGSTOP) ends the
recording cleanly: the recorder notices the silence, closes the recording readable, exits
with the device code and leaves no board process behind — no 30 s wait, no traceback."""

import json
import os
import signal
import time
from pathlib import Path

from recording_process import start_recording, wait_for_samples

from spikeforge.host.errors import ExitCode


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
    process = start_recording(out)
    board = None
    try:
        wait_for_samples(process, out)
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
