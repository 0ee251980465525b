"""The virtual board's configuration flash (sim/virtual_board/spi_flash.h, issue 19).

The C++ SPI NOR model is driven bit by bit through the harness's own hooks by a mode-0
master written here (reads, status, write enable, page programs that AND and wrap inside
their page, the busy time, the persistence file across "power cycles"). End to end, a keyed
virtual board whose flash is kept in a file takes the host's signed writes, and after a
restart with the same file refuses a signed frame captured in the first run as a replay.
"""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cpp_driver import compile_driver

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.epoch_store import (
    OP_PAGE_PROGRAM,
    OP_READ,
    OP_READ_STATUS,
    OP_RELEASE_POWER_DOWN,
    OP_WRITE_DISABLE,
    OP_WRITE_ENABLE,
    PAGE_BYTES,
    REGION_BYTES,
    REGION_OFFSET,
    STATUS_WEL,
    STATUS_WIP,
)

HEADER = Path(__file__).parents[2] / "sim" / "virtual_board" / "spi_flash.h"

#: A test key (never a device's).
KEY = "000102030405060708090a0b0c0d0e0f"

#: A mode-0 SPI master on a stand-in for the Verilated top, one design clock per call of
#: the harness's hooks (flash_before_edge, the edge, flash_after_edge), 2 clocks per SCK half
#: period. Reads stdin lines: "x HEX" a transaction (CS low, the bytes, CS high; prints the
#: bytes read back, sampled while SCK is high), "p DIGITS" raw pin samples (CS# << 2 | SCK << 1
#: | COPI; prints CIPO after each), "i N" N idle clocks, "q" end as the harness does (write
#: back, print the statistics), "k" end at once (a killed board).
DRIVER = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
struct Top { unsigned char flash_sck = 0, flash_cs_n = 1, flash_copi = 0, flash_cipo = 0; };
struct Unkeyed { unsigned char clk = 0; };
#include "spi_flash.h"
static_assert(HasFlashPins<Top>::value, "the stand-in has the pins");
static_assert(!HasFlashPins<Unkeyed>::value, "an unkeyed top has none");
Top top;
int cycle(int sck, int cs_n, int copi) {
    flash_before_edge(&top);
    int seen = top.flash_cipo;                 // what the design samples at this edge
    top.flash_sck = sck; top.flash_cs_n = cs_n; top.flash_copi = copi;
    flash_after_edge(&top);
    return seen;
}
int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2)
        if (!parse_flash_option(argv[i], argv[i + 1])) return 2;
    flash_start<Top>();
    Unkeyed unkeyed;                          // the hooks compile to nothing without pins
    flash_before_edge(&unkeyed); flash_after_edge(&unkeyed);
    if (!flash_finish<Unkeyed>().empty()) return 3;
    static char line[1 << 20];
    while (std::fgets(line, sizeof line, stdin)) {
        if (line[0] == 'i') { long n = std::atol(line + 2); while (n-- > 0) cycle(0, 1, 0); }
        else if (line[0] == 'k') { std::fflush(stdout); std::_Exit(0); }
        else if (line[0] == 'q') { std::printf("%s\n", flash_finish<Top>().c_str()); return 0; }
        else if (line[0] == 'p') {            // samples: digit = CS# << 2 | SCK << 1 | COPI
            for (char *p = line + 2; *p >= '0' && *p <= '7'; ++p) {
                int pins = *p - '0';
                cycle((pins >> 1) & 1, (pins >> 2) & 1, pins & 1);
                std::putchar('0' + flash_chip.cipo());
            }
            std::printf("\n");
        }
        else if (line[0] == 'x') {
            std::vector<int> out;
            cycle(0, 0, 0);                   // CS falls, SCK low
            for (char *p = line + 2; p[0] && p[1] && p[0] != '\n'; p += 2) {
                unsigned byte; std::sscanf(p, "%2x", &byte);
                unsigned in = 0;
                for (int bit = 7; bit >= 0; --bit) {
                    int b = (byte >> bit) & 1;
                    cycle(0, 0, b); cycle(0, 0, b);    // SCK low, COPI set up
                    cycle(1, 0, b);                    // SCK rises
                    in = in << 1 | cycle(1, 0, b);     // sampled while SCK is high
                }
                out.push_back(in);
            }
            cycle(0, 0, 0); cycle(0, 1, 0);   // CS rises with SCK low
            for (int b : out) std::printf("%02x", b);
            std::printf("\n");
        }
        std::fflush(stdout);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    return compile_driver(tmp_path_factory.mktemp("spi_flash"), DRIVER, HEADER.parent,
                          "-Wall", "-Werror")


class Master:
    """The driver as a process: one transaction at a time."""

    def __init__(self, binary: Path, *options: str):
        self.process = subprocess.Popen([str(binary), *options], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)

    def _ask(self, line: str) -> str:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def transfer(self, data: bytes) -> bytes:
        return bytes.fromhex(self._ask("x " + data.hex()))

    def idle(self, clocks: int) -> None:
        assert self.process.stdin
        self.process.stdin.write(f"i {clocks}\n")

    def status(self) -> int:
        return self.transfer(bytes([OP_READ_STATUS, 0]))[1]

    def write_enable(self) -> None:
        self.transfer(bytes([OP_WRITE_ENABLE]))

    def read(self, address: int, count: int) -> bytes:
        return self.transfer(bytes([OP_READ]) + address.to_bytes(3, "big") + bytes(count))[4:]

    def program(self, address: int, data: bytes) -> None:
        self.transfer(bytes([OP_PAGE_PROGRAM]) + address.to_bytes(3, "big") + data)

    def wait_ready(self, limit: int = 100) -> int:
        """Polls of RDSR until WIP clears."""
        for polls in range(limit):
            if not self.status() & STATUS_WIP:
                return polls
        raise AssertionError("the flash stayed busy")

    def quit(self) -> str:
        line = self._ask("q")
        self.process.wait(timeout=10)
        return line

    def kill(self) -> None:
        assert self.process.stdin
        self.process.stdin.write("k\n")
        self.process.stdin.flush()
        self.process.wait(timeout=10)


def random_pins(rng, flash_base: int) -> str:
    """One well-formed mode-0 command at the pin level (random SCK phase lengths, COPI
    moving only while SCK is low), as digits CS# << 2 | SCK << 1 | COPI, then idle."""
    opcode = int(rng.choice([OP_READ_STATUS, OP_READ, OP_READ, OP_PAGE_PROGRAM,
                             OP_PAGE_PROGRAM, OP_WRITE_ENABLE, OP_WRITE_ENABLE,
                             OP_WRITE_DISABLE, 0x9F]))
    out = [opcode]
    if opcode in (OP_READ, OP_PAGE_PROGRAM):
        out += list((flash_base + int(rng.integers(0, 3 * PAGE_BYTES))).to_bytes(3, "big"))
    if opcode == OP_PAGE_PROGRAM:
        # at most a page: beyond it the parts differ (see spi_flash.h), and so do the models
        out += list(rng.integers(0, 256, size=int(rng.integers(0, PAGE_BYTES + 1))))
    elif opcode in (OP_READ, OP_READ_STATUS):
        out += [int(rng.integers(0, 256))] * int(rng.integers(0, 12))
    elif rng.random() < 0.2:
        out.append(0)                   # a one-byte command with one byte too many
    pins = ["4" * int(rng.integers(1, 4)), "0" * int(rng.integers(1, 3))]
    for byte in out:
        for bit in range(7, -1, -1):
            copi = byte >> bit & 1
            pins.append(str(copi) * int(rng.integers(1, 4)))        # SCK low
            pins.append(str(2 | copi) * int(rng.integers(1, 4)))    # SCK high
    pins.append("0" * int(rng.integers(1, 3)))
    return "".join(pins) + "4" * int(rng.integers(1, 4))


def test_the_cpp_flash_answers_as_the_python_part_pin_for_pin(driver):
    """Random well-formed commands (programs of 0..256 bytes across page ends, reads,
    status, WREN/WRDI, an unknown opcode, one-byte commands with a byte too many) at
    random SCK rates: every CIPO level of the C++ model equals sim/spi_flash.py's."""
    import numpy as np

    from spikeforge.sim.spi_flash import SpiFlash

    rng = np.random.default_rng(19)
    python = SpiFlash(busy_polls=0, busy_sck_cycles=0)
    cpp = Master(driver, "--flash-program-cycles", "0")
    for _ in range(300):
        pins = random_pins(rng, REGION_OFFSET + 0x80)
        expected = "".join(str(python.step(int(p) >> 2, int(p) >> 1 & 1, int(p) & 1))
                           for p in pins)
        assert cpp._ask("p " + pins) == expected, pins
    assert python.programs, "the commands must program"
    region = cpp.read(REGION_OFFSET, 4 * PAGE_BYTES)
    assert region == python.read(REGION_OFFSET, 4 * PAGE_BYTES)
    assert region != b"\xff" * len(region)
    cpp.quit()


def test_an_erased_flash_reads_ff_and_answers_status_and_signature(driver):
    flash = Master(driver)
    assert flash.read(REGION_OFFSET, 16) == b"\xff" * 16
    assert flash.read((4 << 20) - 2, 4) == b"\xff" * 4           # wraps at the array's end
    assert flash.status() == 0
    assert flash.transfer(bytes([OP_RELEASE_POWER_DOWN, 0, 0, 0, 0, 0]))[4:] == b"\x15\x15"
    assert flash.transfer(bytes([OP_WRITE_ENABLE])) == b"\xff"  # CIPO idles high
    assert flash.status() == STATUS_WEL
    assert flash.transfer(bytes([OP_READ_STATUS, 0, 0, 0]))[1:] == bytes([STATUS_WEL] * 3)
    flash.transfer(bytes([OP_WRITE_DISABLE]))
    assert flash.status() == 0
    assert "flash_programs 0" in flash.quit()


def test_page_program_needs_wel_ands_wraps_in_its_page_and_is_busy(driver):
    flash = Master(driver, "--flash-program-cycles", "300")
    base = REGION_OFFSET + 0x100
    flash.program(base, b"\x00")                                 # no WREN: ignored
    assert flash.read(base, 1) == b"\xff" and flash.status() == 0

    flash.write_enable()
    flash.program(base + 0xFE, bytes([0xF0, 0x0F, 0xAA]))        # the third wraps to +0x00
    assert flash.status() == STATUS_WIP | STATUS_WEL
    assert flash.read(base, 1) == b"\xff"                        # ignored while busy
    polls = flash.wait_ready()
    assert 1 <= polls, "the program must take a while"
    assert flash.status() == 0                                   # WEL cleared
    assert flash.read(base + 0xFE, 2) == b"\xf0\x0f"
    assert flash.read(base, 1) == b"\xaa"
    assert flash.read(base + PAGE_BYTES, 1) == b"\xff"          # the next page untouched

    flash.write_enable()
    flash.program(base + 0xFE, b"\x3c")                          # a program only clears bits
    flash.wait_ready()
    assert flash.read(base + 0xFE, 1) == b"\x30"

    flash.write_enable()
    flash.program(base + 0x200, bytes(range(256)) + b"\x0f\x1f")  # 258: the column wraps
    flash.wait_ready()
    assert flash.read(base + 0x200, 3) == b"\x0f\x1f\x02"

    flash.write_enable()
    flash.program(base, b"")                                     # no data: nothing done
    assert flash.status() == 0 and flash.read(base, 1) == b"\xaa"   # and WEL cleared
    assert "flash_programs 3" in flash.quit()


def test_the_region_survives_a_kill_and_a_restart_in_its_file(driver, tmp_path):
    keep = tmp_path / "flash.bin"
    options = ("--flash-file", str(keep), "--flash-region-offset", str(REGION_OFFSET),
               "--flash-region-bytes", str(REGION_BYTES), "--flash-program-cycles", "50")
    flash = Master(driver, *options)
    flash.idle(10)
    assert flash.status() == 0                                   # the driver has started
    assert keep.read_bytes() == b"\xff" * REGION_BYTES           # created erased
    flash.write_enable()
    flash.program(REGION_OFFSET + 8, b"\x01\x02\x03")
    flash.kill()                                                 # no orderly write-back
    stored = keep.read_bytes()
    assert len(stored) == REGION_BYTES
    assert stored[8:11] == b"\x01\x02\x03" and stored[:8] == b"\xff" * 8

    again = Master(driver, *options)                             # the power cycle
    assert again.read(REGION_OFFSET + 8, 3) == b"\x01\x02\x03"
    assert again.read(REGION_OFFSET - 1, 1) == b"\xff"           # outside the region: erased
    again.quit()

    keep.write_bytes(b"\xff" * 100)
    broken = Master(driver, *options)
    assert broken.process.wait(timeout=10) == 2
    assert broken.process.stderr and "not the flash region's 8192" in broken.process.stderr.read()


def test_sim_url_names_the_flash_file_without_touching_the_configuration():
    from spikeforge.sim.virtual_board import config_from_sim_url, sim_url_flash

    url = f"sim://?channels=4&control_key={KEY}&flash=boards/flash.bin"
    assert sim_url_flash(url) == Path("boards/flash.bin")
    assert sim_url_flash("sim://?channels=4") is None
    assert config_from_sim_url(url) == config_from_sim_url(f"sim://?channels=4&control_key={KEY}")


def test_a_board_without_flash_pins_refuses_a_flash_file(tmp_path):
    from spikeforge.sim.virtual_board import VirtualBoard, VirtualBoardError

    with pytest.raises(VirtualBoardError, match="control_key"):
        VirtualBoard.start(SystemConfig(channels=4), flash=tmp_path / "flash.bin")


def test_sim_board_flash_on_an_unkeyed_board_is_one_line_naming_the_key(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "sim-board", "--channels", "4", "--flash",
         str(tmp_path / "flash.bin")], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "control_key" in result.stderr and "--config" in result.stderr
    assert not (tmp_path / "flash.bin").exists()


# -- end to end ------------------------------------------------------------------------------

def _signed_write(device, name: str, value: int) -> tuple[bytes, int]:
    """A write signed with the device's key and its next counter, as Device.command
    sends it: the frame (for replaying) and its counter."""
    from spikeforge.firmware.control_protocol import CommandOp, encode_authenticated_command
    from spikeforge.firmware.registers import register

    device._tag = (device._tag + 1) & 0xFFFFFFFF
    counter = device.key.next_counter()
    frame = encode_authenticated_command(device._tag, register(name).address, CommandOp.WRITE,
                                         value, counter, device.key.key)
    return frame, counter


def _reply_to(device, frame: bytes, timeout_s: float = 20.0):
    """Sends ``frame`` as it is (no fresh signature) and returns the device's reply."""
    from spikeforge.firmware.control_protocol import Reply

    device._write(frame)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for item in device._read().items:
            if isinstance(item, Reply):
                return item
    raise AssertionError(f"no reply within {timeout_s:g} s")


def _bare_reply_status(datagram: bytes):
    """The status of the REPLY frame ``datagram`` (None if it is another frame)."""
    from spikeforge.firmware.control_protocol import decode_reply
    from spikeforge.firmware.framing import HEADER_BYTES, FrameType

    if len(datagram) < HEADER_BYTES + 4 or datagram[2] != FrameType.REPLY:
        return None
    return decode_reply(int.from_bytes(datagram[3:7], "little"),
                        datagram[HEADER_BYTES:-4]).status


def _epochs_spent(device) -> int:
    return device.read_register("AUTH_EPOCHS") & ((1 << 24) - 1)


class KeyedBoards:
    """Keyed virtual boards of one link sharing a key folder and (optionally) a flash file."""

    def __init__(self, tmp_path: Path, monkeypatch, link: str):
        from spikeforge.sim.virtual_board import config_from_sim_url, sim_url_flash

        keys = tmp_path / "keys"
        keys.mkdir(mode=0o700)
        (keys / "board.key").write_text(KEY + "\n")
        (keys / "board.key").chmod(0o600)
        monkeypatch.setenv("SPIKEFORGE_KEY_DIR", str(keys))
        self.link = link
        self.flash = tmp_path / "flash.bin"
        url = f"sim://?channels=4&control_key={KEY}&flash={self.flash}&link={link}"
        self.config = config_from_sim_url(url)
        assert sim_url_flash(url) == self.flash

    def start(self, flash: Path | None):
        from spikeforge.sim.virtual_board import VirtualBoard

        return VirtualBoard.start(self.config, flash=flash)

    def open(self, board, keyed: bool):
        from spikeforge.host.device import Device
        from spikeforge.host.keys import load_key

        return Device.open(board.url, key=load_key("board") if keyed else None)

    def capture(self) -> tuple[bytes, int]:
        """First boot, on the flash file: signed writes carried out, one of them kept (an
        eavesdropper's copy); its epoch is then in the file. (frame, counter)"""
        from spikeforge.firmware.control_protocol import EPOCH_SHIFT, ReplyStatus

        board = self.start(self.flash)
        try:
            with self.open(board, keyed=True) as device:
                device.identify()
                assert device.write_register("STREAM_ENABLE", 0) == 0
                assert device.write_register("STREAM_ENABLE", 1) == 1
                frame, counter = _signed_write(device, "STREAM_ENABLE", 0)
                assert _reply_to(device, frame).status == ReplyStatus.OK
                assert device.read_register("STREAM_ENABLE") == 0
                assert _epochs_spent(device) > counter >> EPOCH_SHIFT
        finally:
            board.stop()
        assert self.flash.stat().st_size == REGION_BYTES
        assert self.flash.read_bytes() != b"\xff" * REGION_BYTES, "no epoch reached the file"
        return frame, counter

    def replay(self, frame: bytes, flash: Path | None, *, at_power_up: bool):
        """Boot (on ``flash``) and send ``frame`` before anything signed: at once, or once
        the board is up (UART: identified; UDP: a second after a datagram that wakes it).
        (the reply's status or None if none came (a keyed UDP board answers no unverified
        host), STREAM_ENABLE and REPLAYS_REFUSED afterwards, None if they cannot be read)."""
        board = self.start(flash)
        try:
            if self.link == "uart":
                with self.open(board, keyed=False) as device:
                    if not at_power_up:
                        device.identify()
                    status = _reply_to(device, frame).status
                    return (status, device.read_register("STREAM_ENABLE"),
                            device.read_register("REPLAYS_REFUSED"))
            # UDP: the harness runs from the first datagram it gets.
            host, port = board.url.removeprefix("udp://").rsplit(":", 1)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as bare:
                if not at_power_up:
                    bare.sendto(b"wake up", (host, int(port)))
                    time.sleep(1.0)
                bare.sendto(frame, (host, int(port)))
                bare.settimeout(3.0)
                try:
                    status = _bare_reply_status(bare.recv(65536))
                except TimeoutError:
                    status = None
            if status is not None:          # the board took the replayer for its host
                return status, None, None
            with self.open(board, keyed=True) as device:   # its opening starts a new epoch
                device.identify()
                return (None, device.read_register("STREAM_ENABLE"),
                        device.read_register("REPLAYS_REFUSED"))
        finally:
            board.stop()


def _check_refused(link: str, status, stream_enable, replays) -> None:
    from spikeforge.firmware.control_protocol import ReplyStatus

    assert status in (None, ReplyStatus.REPLAYED), (
        f"after the power cycle the board answered the replayed frame with {status!r}: it "
        "carried out a command of an epoch its flash says is spent")
    assert status == (ReplyStatus.REPLAYED if link == "uart" else None)
    assert stream_enable == 1, "the replayed write was carried out after the power cycle"
    assert replays == 1


@pytest.mark.sim
@pytest.mark.parametrize("link", ["uart", "udp"])
def test_a_captured_signed_frame_is_refused_after_a_power_cycle(tmp_path, monkeypatch, link):
    """The first boot carries out signed writes and stores their epoch in the flash file;
    the second, on the same file, refuses the frame captured in the first as a replay,
    sent before the host signs anything in it, so only the stored epoch can refuse it.
    The control: on an erased flash the same frame is carried out."""
    from spikeforge.firmware.control_protocol import ReplyStatus

    boards = KeyedBoards(tmp_path, monkeypatch, link)
    frame, _ = boards.capture()
    _check_refused(link, *boards.replay(frame, boards.flash, at_power_up=False))
    status, stream_enable, replays = boards.replay(frame, None, at_power_up=False)
    assert status == ReplyStatus.OK, "the control: without the stored epoch the frame is new"
    if link == "uart":
        assert stream_enable == 0 and replays == 0


@pytest.mark.sim
@pytest.mark.parametrize("link", ["uart", "udp"])
def test_a_replay_at_power_up_waits_for_the_stored_epochs(tmp_path, monkeypatch, link):
    """A replayed frame that arrives while the board is still reading its epochs from the
    flash (sent the moment it starts) is refused too: the device must not check a counter
    before its replay floor is loaded."""
    boards = KeyedBoards(tmp_path, monkeypatch, link)
    frame, _ = boards.capture()
    _check_refused(link, *boards.replay(frame, boards.flash, at_power_up=True))
