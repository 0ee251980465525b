"""The host lowers an FTDI bridge's latency timer (Linux default 16 ms) to 1 ms, or says how."""

import os

from spikeforge.host.device import FTDI_LATENCY_TIMER_MS, set_ftdi_latency_timer


def _timer(root, value: str):
    folder = root / "bus" / "usb-serial" / "devices" / "ttyUSB1"
    folder.mkdir(parents=True)
    (folder / "latency_timer").write_text(value)
    return folder / "latency_timer"


def test_a_writable_timer_is_set_to_one_ms(tmp_path):
    timer = _timer(tmp_path, "16\n")
    assert set_ftdi_latency_timer("/dev/ttyUSB1", sys_root=tmp_path) == (1, None)
    assert timer.read_text().strip() == str(FTDI_LATENCY_TIMER_MS)


def test_a_read_only_timer_is_reported_with_the_fix(tmp_path):
    timer = _timer(tmp_path, "16\n")
    timer.chmod(0o444)
    if os.access(timer, os.W_OK):          # root writes anyway: nothing to report then
        return
    ms, note = set_ftdi_latency_timer("/dev/ttyUSB1", sys_root=tmp_path)
    assert ms == 16 and "sudo tee" in note and "udev" in note


def test_ports_without_a_timer_are_left_alone(tmp_path):
    assert set_ftdi_latency_timer("socket://127.0.0.1:7", sys_root=tmp_path) == (None, None)
    assert set_ftdi_latency_timer("/dev/ttyACM0", sys_root=tmp_path) == (None, None)
