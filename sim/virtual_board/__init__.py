"""The virtual board: the acquisition system compiled with Verilator into a process whose
UART is a TCP socket, so the host records from simulated hardware exactly as from a board.

The C++ harness (``main.cpp``) clocks the Verilated design, decodes ``uart_tx`` at bit level
like a USB-serial bridge, and sends the bytes to one TCP client; no Python runs per cycle.
Builds are cached under ``build/vboard/<digest>/`` by the generated Verilog.

A UART board with the test source is by default the *direct-link* board
(:func:`~.top.direct_design_config`): the same design on a clock of about channels x sample
rate (a few times fewer cycles per sample than the board's clock), its UART replaced by
byte-wide ports the harness serves at the board's UART byte rate (a token bucket), so the
frames, the drops when the link is too slow, the decoder and the loss accounting are the
board's, and a 64-channel board runs faster than real time. ``bit_level=True`` (``sim-board
--bit-level``) runs the board's clock and the bit-serial UART instead; the RHD source always
does (its SPI timing is the board clock's).

With the RHD2000 source (``config.source == "rhd"``) the harness also plays behavioural
RHD2000 chips on the SPI pins (``rhd_chip.h``, the C++ twin of
:mod:`spikeforge.sim.chips.rhd2000`), fed from a file of int16 samples
(:class:`SampleFeed`): the recording goes through the chips, the front-end, the framer and
the UART, and the host records it back.

With the Ethernet link (``config.link == "ethernet"``; in a URL ``sim://?link=udp``) the
harness is ``main_eth.cpp``: the design's GMII frames become real UDP datagrams on
127.0.0.1 (the control port on a socket of its own, the data from another), the host's
datagrams become frames on the design's receive pins, and the board's URL is
``udp://127.0.0.1:PORT``; ``pcap`` (``sim://?link=udp&pcap=FILE``) writes every frame of the
link to a capture file (:meth:`VirtualBoard.start`).

Keyed builds (``control_key``) have the configuration flash's SPI pins; the harness plays an
SPI NOR flash on them (``spi_flash.h``), erased at every start, or kept in a file
(``sim://?control_key=...&flash=FILE``, :func:`sim_url_flash`): the region of
:mod:`spikeforge.firmware.epoch_store` (created erased if missing), written back after every
page program, so a restarted board (a power cycle) keeps the epochs it stored.
"""

import hashlib
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import numpy as np

from spikeforge.firmware.config import SystemConfig, read_config_file
from spikeforge.firmware.errors import ConfigError, SpikeforgeError
from spikeforge.host.errors import ExitCode

from ..toolchain import drop_precompiled_headers, verilator_environment, verilator_version

__all__ = ["VirtualBoard", "build_virtual_board", "config_from_sim_url", "VirtualBoardError",
           "SIM_URL_SCHEME", "is_sim_url",
           "SampleFeed", "read_sample_file", "rhd_config_for", "board_from_sim_url",
           "expected_recording", "DEFAULT_CABLE_DELAY_CYCLES", "source_signal_feed",
           "feed_from_file", "sim_url_capture", "host_ip_for", "HOST_MAC",
           "UDP_IDENTITY_INTERVAL_FRAMES", "design_config", "sim_url_flash",
           "has_flash_pins"]

_HARNESS = Path(__file__).with_name("main.cpp")
_ETHERNET_HARNESS = Path(__file__).with_name("main_eth.cpp")
_HEADERS = (Path(__file__).with_name("rhd_chip.h"), Path(__file__).with_name("rhd_board.h"),
            Path(__file__).with_name("spi_flash.h"))
#: The fixed addresses the Ethernet harness gives the host in the frames it makes of the
#: host's datagrams (the board learns them from the first command).
HOST_MAC = 0x02_53_46_00_00_FE
BUILD_ROOT = Path(os.environ.get("SPIKEFORGE_BUILD", "build")) / "vboard"


#: Speed matters more than debug visibility here: X values resolved at compile time, no
#: assertions, optimised C++ for this machine.
_VERILATOR_FLAGS = (
    "--cc", "--exe", "--build", "-j", "2", "-O3", "-Wno-fatal", "--x-assign", "fast",
    "--x-initial", "fast", "--noassert", "--top-module", "top", "--prefix", "Vtop",
    "-CFLAGS", "-O3 -march=native",
)


class VirtualBoardError(SpikeforgeError):
    exit_code = ExitCode.GATEWARE


#: The URL scheme that names a virtual board wherever a device URL is asked for:
#: ``sim://[CONFIG.json]?field=value&...`` (:func:`board_from_sim_url`).
SIM_URL_SCHEME = "sim"


def is_sim_url(url: str) -> bool:
    """Whether ``url`` names a virtual board rather than a port or a pyserial URL."""
    return urlparse(url).scheme == SIM_URL_SCHEME


def _parse_sim_url(url: str) -> tuple[str, dict[str, str]]:
    """The one parser of sim:// URLs: the configuration file named (or ""), and the query
    fields (a field given twice: the last)."""
    parsed = urlparse(url)
    if parsed.scheme != SIM_URL_SCHEME:
        raise ConfigError(f"a virtual board URL starts with {SIM_URL_SCHEME}://, not {url!r}")
    return (parsed.netloc + parsed.path).strip(), dict(parse_qsl(parsed.query))


def config_from_sim_url(url: str) -> SystemConfig:
    """``sim://?channels=32&sample_rate_hz=20000`` or ``sim://path/to/config.json``."""
    location, query = _parse_sim_url(url)
    return _fit_link(_config_from_sim_query(location, query), location, query)


#: Clocks a virtual board whose URL names no link rate (neither ``clock_hz`` nor ``baud``)
#: may run at when the default link cannot carry its raw stream: the first whose fastest
#: UART that keeps the control path (``clock_hz / MIN_RX_DIVISOR``) is at most
#: :data:`SIM_MAX_LOAD` loaded. A real board's link is what its board gives; a virtual one
#: can be as fast as the stream needs.
SIM_CLOCKS_HZ = (24_000_000, 36_000_000, 48_000_000)
#: The most a virtual board's default link is loaded (headroom for identity frames, events).
SIM_MAX_LOAD = 0.9


def _fit_link(config: SystemConfig, location: str, query: dict[str, str]) -> SystemConfig:
    """``config`` with a link that carries its raw stream (see :data:`SIM_CLOCKS_HZ`),
    unless the URL or its file names the link rate; unchanged if it fits already or
    nothing fits (``spikeforge record`` then refuses, naming the load)."""
    from spikeforge.firmware.control_protocol import MIN_RX_DIVISOR

    named = set(query) | (set(read_config_file(location)) if location else set())
    if config.link != "uart" or {"clock_hz", "baud"} & named \
            or _sealed_link_load(config) <= SIM_MAX_LOAD:
        return config
    for clock_hz in SIM_CLOCKS_HZ:
        try:
            candidate = config.replace(clock_hz=clock_hz, baud=clock_hz // MIN_RX_DIVISOR)
        except ConfigError:
            continue
        if _sealed_link_load(candidate) <= SIM_MAX_LOAD:
            return candidate
    return config


def _sealed_link_load(config: SystemConfig) -> float:
    """``config.link_load`` of a UART link, with the tag of every sealed frame in an
    encrypted-stream build (``stream_cipher``: each DATA frame carries 8 bytes more)."""
    from spikeforge.firmware.framing import DATA_FRAME_OVERHEAD_BYTES
    from spikeforge.firmware.stream_cipher import TAG_BYTES

    if not config.stream_cipher:
        return config.link_load
    frame_bytes = config.payload_bytes + DATA_FRAME_OVERHEAD_BYTES
    return config.link_load * (frame_bytes + TAG_BYTES) / frame_bytes


#: The identity interval of a UDP virtual board unless its URL or configuration sets one: it
#: simulates two clocks (the link's at 125 MHz), about 1/60 of real time per CPU second, so
#: the default interval (over a second of device time) would outlast the host's wait for
#: the identity.
UDP_IDENTITY_INTERVAL_FRAMES = 8

#: ``link=`` values of a sim:// URL and the configuration's link they name.
_LINK_NAMES = {"uart": "uart", "udp": "ethernet", "ethernet": "ethernet"}


def _config_from_sim_query(location: str, query: dict[str, str]) -> SystemConfig:
    data = read_config_file(location) if location else {}
    for key, value in query.items():
        if key in _BOARD_KEYS:
            continue
        if key == "link":
            if value not in _LINK_NAMES:
                raise ConfigError(f"link={value!r} in a sim:// URL names no link; use "
                                  f"link=uart (TCP) or link=udp (Gigabit Ethernet as UDP)")
            value = _LINK_NAMES[value]
        data[key] = int(value) if value.lstrip("-").isdigit() else value
    if data.get("link") == "ethernet":
        data.setdefault("identity_interval_frames", UDP_IDENTITY_INTERVAL_FRAMES)
    return SystemConfig.from_dict(data)


#: Cycles the profile-guided build's training run simulates (about a second).
PGO_TRAINING_CYCLES = 2_000_000


def design_config(config: SystemConfig, *, bit_level: bool = False) -> SystemConfig:
    """The configuration the virtual board of ``config`` elaborates: the direct-link
    design's (:func:`~.top.direct_design_config`) unless ``bit_level`` or there is none,
    else ``config`` itself. Its ``clock_hz`` is the clock the harness simulates."""
    from .top import direct_design_config

    direct = None if bit_level else direct_design_config(config)
    return config if direct is None else direct


def build_virtual_board(config: SystemConfig, *, profile_guided: bool = False,
                        reset_input: bool = False, system=None,
                        bit_level: bool = False) -> Path:
    """Compile the virtual board for ``config`` (cached); return the executable.

    ``profile_guided``: compile twice, the first time instrumented, run that for
    :data:`PGO_TRAINING_CYCLES` cycles, and compile the model again with the profile (GCC
    ``-fprofile-use``); about 10 % faster, twice the build time.
    ``reset_input``: compile the bare :class:`~spikeforge.hdl.top.AcquisitionSystem` with
    its ``rst`` input instead of :class:`~.top.VirtualBoardTop` (slower; for comparisons).
    ``system``: a function of the configuration that makes the design to compile instead of
    the acquisition system (tests of the harness use a stand-in with the same ports).
    ``bit_level``: the board's clock and bit-serial UART even where the direct-link board
    exists (module docstring).
    """
    from amaranth.back import verilog

    from spikeforge.hdl.top import AcquisitionSystem

    from .top import VirtualBoardTop

    ethernet = config.link == "ethernet"
    if reset_input and (ethernet or system is not None):
        raise VirtualBoardError("reset_input builds only the UART acquisition system")
    direct = (not reset_input and system is None
              and design_config(config, bit_level=bit_level) is not config)
    if reset_input:
        source = verilog.convert(AcquisitionSystem(config), name="top", emit_src=False)
    else:
        top = VirtualBoardTop(config, None if system is None else system(config), direct=direct)
        source = verilog.convert(top, name="top", ports=top.ports, emit_src=False)
    harness = _ETHERNET_HARNESS if ethernet else _HARNESS
    flags = list(_VERILATOR_FLAGS)
    if config.source == "rhd":
        # Compiles the harness's RHD section (the chips on the SPI pins).
        flags += ["-CFLAGS", f"-DSPIKEFORGE_RHD_LINES={config.rhd.lines}"]
    flags += ["-CFLAGS", f"-I{_HARNESS.parent.resolve()}"]
    digest = hashlib.sha256(
        source.encode() + harness.read_bytes() + b"".join(h.read_bytes() for h in _HEADERS)
        + " ".join(flags).encode() + (b" pgo" if profile_guided else b"")
        + verilator_version().encode()
    ).hexdigest()[:16]
    folder = (BUILD_ROOT / digest).resolve()
    binary = folder / "vboard"
    if binary.exists():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.v").write_text(source)
    if profile_guided:
        profile = folder / "profile"
        training = _compile(folder / "training", folder / "top.v", harness, flags + [
            "-CFLAGS", f"-fprofile-generate={profile}",
            "-LDFLAGS", f"-fprofile-generate={profile}"])
        command = _harness_command(training, config, cycles=PGO_TRAINING_CYCLES,
                                   bit_level=not direct)
        if config.source == "rhd":
            command += _rhd_arguments(config, source_signal_feed(config))
        if ethernet:
            subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
        else:
            _drain(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        flags += ["-CFLAGS", f"-fprofile-use={profile} -fprofile-partial-training "
                             "-Wno-missing-profile"]
    return _compile(folder, folder / "top.v", harness, flags)


def host_ip_for(config: SystemConfig) -> str:
    """The IPv4 address the Ethernet harness gives the host: the board's /24, host 1 (2 if
    the board is .1)."""
    board = config.ethernet.ip
    host = (board & ~0xFF) | (2 if board & 0xFF == 1 else 1)
    return ".".join(str(host >> s & 0xFF) for s in (24, 16, 8, 0))


def _harness_command(binary: Path, config: SystemConfig, *, port: int = 0, cycles: int = 0,
                     pcap: Path | None = None, bit_level: bool = False) -> list[str]:
    """The harness's arguments for ``config`` (without those of the RHD chips)."""
    if config.link != "ethernet":
        command = [str(binary), "--port", str(port), "--divisor", str(config.uart_divisor),
                   "--cycles", str(cycles)]
        design = design_config(config, bit_level=bit_level)
        if design is not config:
            # a link byte takes cycles_per_byte board cycles = NUM/DEN design cycles
            num, den = design.clock_hz * config.cycles_per_byte, config.clock_hz
            common = math.gcd(num, den)
            command += ["--byte-period", f"{num // common}/{den // common}"]
        return command
    from spikeforge.firmware.ethernet import LINK_CLOCK_HZ

    ethernet = config.ethernet
    command = [str(binary), "--port", str(port), "--cycles", str(cycles),
               "--clock-hz", str(config.clock_hz), "--link-hz", str(LINK_CLOCK_HZ),
               "--board-mac", f"{ethernet.mac:012x}", "--board-ip", ethernet.ip_text,
               "--board-control-port", str(ethernet.control_port),
               "--board-data-port", str(ethernet.data_port),
               "--host-mac", f"{HOST_MAC:012x}", "--host-ip", host_ip_for(config)]
    if pcap is not None:
        command += ["--pcap", str(pcap)]
    return command


def _compile(folder: Path, verilog_file: Path, harness: Path, flags: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    binary = folder / "vboard"
    env = {**os.environ, **verilator_environment()}
    command = [
        "verilator", *flags, "-Mdir", str(folder / "obj"),
        "-o", str(binary), str(verilog_file), str(harness),
    ]
    log = folder / "build.log"
    with open(log, "w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0 or not binary.exists():
        raise VirtualBoardError(f"building the virtual board failed; see {log}")
    drop_precompiled_headers(folder)
    return binary


def _drain(process: subprocess.Popen, first: str = "") -> tuple[int, str]:
    """Connect to a started harness, read until it closes; (bytes received, its stats).
    ``first``: its "listening on" line if the caller has read it already."""
    import socket

    first = first or (process.stdout.readline() if process.stdout else "")
    if not first.startswith("listening on "):
        process.kill()
        raise VirtualBoardError(f"the virtual board did not start: {first!r}")
    received = 0
    with socket.create_connection(("127.0.0.1", int(first.split()[-1]))) as client:
        while chunk := client.recv(1 << 16):
            received += len(chunk)
    out, _ = process.communicate(timeout=60)
    return received, out.strip()


@dataclass
class VirtualBoard:
    """A running virtual board. ``url`` is what :class:`spikeforge.host.Device` opens."""

    process: subprocess.Popen
    url: str
    config: SystemConfig
    #: The clock the harness simulates (the direct-link design's, or the board's).
    clock_hz: int = 0

    @classmethod
    def start(cls, config: SystemConfig, *, port: int = 0, cycles: int = 0,
              realtime: bool | None = None, stats_file: Path | None = None,
              feed: "SampleFeed | None" = None,
              profile_guided: bool = False, pcap: Path | None = None,
              system=None, bit_level: bool = False,
              byte_log: Path | None = None,
              flash: Path | None = None) -> "VirtualBoard":
        """Build (cached) and start the board. With the RHD source its chips play ``feed``
        (default: the test source's signal, repeated).

        With the Ethernet link (``config.link == "ethernet"``) ``port`` is the UDP control
        port on 127.0.0.1 (0: any free one), :attr:`url` is ``udp://127.0.0.1:PORT``, and
        ``pcap`` names a capture file of the link's frames (classic pcap, Ethernet, FCS
        stripped, simulated time). The board waits for the host's first datagram before it
        runs (unless ``cycles`` is given). ``system``, ``bit_level``: see
        :func:`build_virtual_board`; ``cycles`` counts the simulated clock's cycles
        (:attr:`clock_hz`). ``realtime``: pace the simulation to the wall clock (default:
        the direct-link board is paced, since it outruns a host that reads as from a real
        board, and replies would wait behind seconds of queued frames; the slower boards
        run as fast as they can). ``byte_log`` (UART): a file of one little-endian uint64 per byte
        sent to the host, the cycle its last bit reached the host's end of the link.
        ``flash`` (keyed builds): the file that keeps the configuration flash's region
        (module docstring); default: the flash is erased at every start."""
        ethernet = config.link == "ethernet"
        if feed is not None and config.source != "rhd":
            raise VirtualBoardError(
                "only a virtual board with the RHD front-end (source=rhd) plays a sample "
                "file; the test source makes its own signal")
        if pcap is not None and not ethernet:
            raise VirtualBoardError(
                "a capture (pcap) is written only by a virtual board with the Ethernet link; "
                "add link=udp to the sim:// URL (or --link udp)")
        flash_arguments = [] if flash is None else _flash_arguments(config, Path(flash), system)
        binary = build_virtual_board(config, profile_guided=profile_guided, system=system,
                                     bit_level=bit_level)
        bit_level = bit_level or system is not None
        command = _harness_command(binary, config, port=port, cycles=cycles, pcap=pcap,
                                   bit_level=bit_level)
        command += flash_arguments
        clock_hz = design_config(config, bit_level=bit_level).clock_hz
        if config.source == "rhd":
            command += _rhd_arguments(config, feed or source_signal_feed(config))
        if realtime is None:
            realtime = clock_hz != config.clock_hz
        if realtime:
            command += ["--realtime", "1" if ethernet else str(clock_hz)]
        if byte_log is not None:
            command += ["--byte-log", str(byte_log)]
        if stats_file is not None:
            command += ["--stats", str(stats_file)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        first = process.stdout.readline() if process.stdout else ""
        if not first.startswith("listening on "):
            process.kill()
            raise VirtualBoardError(f"the virtual board did not start: {first!r}")
        scheme = "udp" if ethernet else "socket"
        return cls(process, f"{scheme}://127.0.0.1:{int(first.split()[-1])}", config, clock_hz)

    @classmethod
    def measure(cls, config: SystemConfig, cycles: int, feed: "SampleFeed | None" = None,
                profile_guided: bool = False, baseline: bool = False,
                bit_level: bool = False) -> dict[str, float]:
        """Run ``cycles`` cycles of the board's clock (``cycles / config.clock_hz`` seconds
        of device time; the direct-link board runs that time on its own clock) with a client that
        drains the socket; return the speed (simulated cycles per wall second and per CPU
        second of the simulation loop, the clock they count, ``clock_hz``, and the ratios
        to real time, ``realtime_ratio`` by the wall clock and ``realtime_ratio_cpu``).

        ``baseline``: the board as it was before its speed work (the bare acquisition system
        with a reset input, two ``eval()`` per cycle), for comparisons in one run.
        """
        if config.link == "ethernet":
            raise VirtualBoardError("measuring the speed works with the UART link only; "
                                    "drop link=ethernet (the UDP board prints its speed when "
                                    "stopped)")
        if baseline:
            binary = build_virtual_board(config, reset_input=True)
            command = [str(binary), "--port", "0", "--divisor", str(config.uart_divisor),
                       "--cycles", str(cycles), "--evals-per-cycle", "2"]
            if config.source == "rhd":
                command += _rhd_arguments(config, feed or source_signal_feed(config))
        else:
            binary = build_virtual_board(config, profile_guided=profile_guided,
                                         bit_level=bit_level)
            command = None
        clock_hz = design_config(config, bit_level=bit_level or baseline).clock_hz
        if command is None:
            board = cls.start(config, cycles=cycles * clock_hz // config.clock_hz, feed=feed,
                              profile_guided=profile_guided, bit_level=bit_level,
                              realtime=False)
            process = board.process
            first = f"listening on {board.url.rsplit(':', 1)[1]}\n"
        else:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            first = ""
        received, line = _drain(process, first)
        fields = line.split()
        stats = {fields[i]: float(fields[i + 1]) for i in range(0, len(fields) - 1, 2)}
        stats["bytes_received"] = received
        stats["clock_hz"] = clock_hz
        stats["realtime_ratio"] = stats["cycles_per_s"] / clock_hz
        stats["realtime_ratio_cpu"] = stats["cycles_per_cpu_s"] / clock_hz
        return stats

    def stop(self, timeout_s: float = 5.0) -> str:
        """Stop the board; return its statistics line. A board that does not end within
        ``timeout_s`` of SIGTERM (frozen: stopped, or stuck) is killed, never left behind."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()      # SIGKILL ends a stopped process too
            self.process.communicate(timeout=timeout_s)
            return f"did not end within {timeout_s:g} s of SIGTERM (frozen?); killed"
        return out.strip()


# -- the RHD2000 chips' samples -----------------------------------------------------------------

#: Cable round trip the chips sit behind by default, in cycles: not 0, so the start-up delay
#: calibration has something to find (as on a real headstage cable).
DEFAULT_CABLE_DELAY_CYCLES = 2

#: Query keys of a sim:// URL that describe the board's input (or its capture), not the
#: configuration.
_BOARD_KEYS = ("from", "cable_delay", "repeat", "pcap", "flash")


@dataclass(frozen=True)
class SampleFeed:
    """What the virtual board's RHD2000 chips play: a flat file of interleaved int16 frames
    (one column per stream channel, in stream channel order), from the first frame.

    Conversion k of a stream channel's amplifier returns frame k of its column; after the
    last frame the chips return 0 (or, with ``repeat``, start again).
    """

    path: Path
    channels: int
    repeat: bool = False
    cable_delays: tuple[int, ...] | None = None

    def frames(self) -> np.ndarray:
        """The samples, shape (frames, channels)."""
        return np.fromfile(self.path, dtype="<i2").reshape(-1, self.channels)


def read_sample_file(path: Path, channels: int | None = None) -> tuple[np.ndarray, int | None]:
    """Samples (frames, channels) of a WAV file (16-bit PCM) or a flat file of interleaved
    little-endian int16 frames (``channels`` columns); and the WAV's sample rate (None for a
    flat file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sample file {str(path)!r} does not exist")
    if path.read_bytes()[:4] == b"RIFF":
        import wave

        try:
            with wave.open(str(path), "rb") as wav:
                if wav.getsampwidth() != 2:
                    raise ConfigError(
                        f"{path} has {8 * wav.getsampwidth()}-bit samples; the chips play 16-bit "
                        "PCM: convert it (e.g. with sox -b 16) or give a flat int16 file")
                if channels is not None and channels != wav.getnchannels():
                    raise ConfigError(
                        f"{path} has {wav.getnchannels()} channels, not {channels}; drop "
                        "--channels for a WAV file (it says how many it has)")
                raw = wav.readframes(wav.getnframes())
                data = np.frombuffer(raw, dtype="<i2").reshape(-1, wav.getnchannels())
                return data, wav.getframerate()
        except wave.Error as exc:
            raise ConfigError(f"{path} is not a WAV file Python can read ({exc}); give a "
                              "16-bit PCM WAV or a flat int16 file with --file-channels") from None
    if channels is None or channels < 1:
        raise ConfigError(
            f"{path} is a flat sample file: say how many interleaved int16 channels it has "
            "(--channels N, or channels=N in a sim:// URL)")
    size = path.stat().st_size
    if size % (2 * channels):
        raise ConfigError(
            f"{path} has {size} bytes, not a whole number of {channels}-channel int16 frames; "
            "check --channels")
    return np.fromfile(path, dtype="<i2").reshape(-1, channels), None


def rhd_config_for(base: SystemConfig, channels: int,
                   chips: tuple[str, ...] = ("RHD2132",)) -> SystemConfig:
    """``base`` with the RHD source streaming ``channels`` amplifiers: the first amplifiers of
    the chips, chip by chip (the chips' other settings from ``base.rhd``)."""
    from dataclasses import replace

    from spikeforge.firmware.rhd2000 import CHIPS

    masks = []
    left = channels
    for name in chips:
        if name not in CHIPS:
            raise ConfigError(f"unknown chip {name!r}; use one of {', '.join(CHIPS)}")
        take = min(left, CHIPS[name].amplifiers)
        if take == 0:
            raise ConfigError(
                f"{channels} channels need fewer chips than {', '.join(chips)}; drop {name}")
        masks.append((1 << take) - 1)
        left -= take
    if left:
        total = sum(CHIPS[n].amplifiers for n in chips)
        raise ConfigError(
            f"{channels} channels do not fit on {', '.join(chips)} ({total} amplifiers); "
            "add chips (at most 4)")
    delays = base.rhd.miso_delay_cycles
    delays = (delays + (delays[-1],) * len(chips))[:len(chips)]
    rhd = replace(base.rhd, chips=tuple(chips), amplifier_masks=tuple(masks),
                  miso_delay_cycles=delays)
    return base.replace(source="rhd", channels=channels, rhd=rhd)


def board_from_sim_url(url: str) -> tuple[SystemConfig, SampleFeed | None]:
    """The configuration and the chips' input a sim:// URL names:
    ``sim://[CONFIG.json]?from=FILE&channels=N&cable_delay=D&repeat=1``. With ``from``,
    the board has the RHD source streaming the file's channels (a flat file has
    ``channels`` columns; a WAV file says how many it has and its sample rate)."""
    location, query = _parse_sim_url(url)
    config = _config_from_sim_query(location, query)
    if "from" not in query:
        return _fit_link(config, location, query), None
    channels = int(query["channels"]) if "channels" in query else None
    if channels is None and config.source == "rhd":
        channels = config.channels        # a configuration file that names the RHD source
    config, feed = feed_from_file(config, Path(query["from"]), channels,
                                  repeat=query.get("repeat", "0") not in ("0", ""),
                                  cable_delay=int(query["cable_delay"])
                                  if "cable_delay" in query else None)
    return _fit_link(config, location, query), feed


def sim_url_capture(url: str) -> Path | None:
    """The capture file a sim:// URL names (``pcap=FILE``), or None."""
    _, query = _parse_sim_url(url)
    return Path(query["pcap"]) if query.get("pcap") else None


def sim_url_flash(url: str) -> Path | None:
    """The file a sim:// URL keeps the board's configuration flash in (``flash=FILE``), or
    None (an erased flash at every start)."""
    _, query = _parse_sim_url(url)
    return Path(query["flash"]) if query.get("flash") else None


def has_flash_pins(config: SystemConfig, system=None) -> bool:
    """Whether the design of ``config`` (or ``system(config)``) has the configuration flash's
    SPI pins (``flash_cs_n`` and the others: keyed builds)."""
    import gc
    import warnings

    from amaranth.hdl import UnusedElaboratable

    from spikeforge.hdl.top import AcquisitionSystem

    # Only the signature is asked for: the design (and its cores, made in its constructor)
    # is dropped unelaborated, which is not the mistake Amaranth's warning is about.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        design = AcquisitionSystem(config) if system is None else system(config)
        found = "flash_cs_n" in design.signature.members
        del design
        gc.collect()
    return found


def _flash_arguments(config: SystemConfig, path: Path, system=None) -> list[str]:
    """The harness's options that keep the flash's region in ``path``; refuses a design
    without the pins, a file of another size and a folder that does not exist."""
    if not has_flash_pins(config, system):
        raise VirtualBoardError(
            f"flash={path} keeps the configuration flash of a keyed build, but this board has "
            "no flash pins; build it keyed (control_key=<32 hex digits> in the sim:// URL, or in "
            "sim-board's --config), or leave the flash file out")
    from spikeforge.firmware.epoch_store import REGION_BYTES, REGION_OFFSET

    if path.exists() and (not path.is_file() or path.stat().st_size != REGION_BYTES):
        raise VirtualBoardError(
            f"{path} is not a flash region of {REGION_BYTES} bytes; give another file name, "
            "or delete it for an erased flash")
    if not path.parent.is_dir():
        raise VirtualBoardError(f"the folder of the flash file {path} does not exist; "
                                "create it first")
    return ["--flash-file", str(path.resolve()), "--flash-region-offset", str(REGION_OFFSET),
            "--flash-region-bytes", str(REGION_BYTES)]


def feed_from_file(config: SystemConfig, path: Path, channels: int | None = None, *,
                   repeat: bool = False, cable_delay: int | None = None,
                   chips: tuple[str, ...] | None = None, folder: Path | None = None
                   ) -> tuple[SystemConfig, SampleFeed]:
    """The RHD configuration for a sample file and the feed that plays it. A WAV file's
    sample rate becomes the configuration's; a WAV file is converted to a flat file in
    ``folder`` (default: the build folder)."""
    data, rate = read_sample_file(path, channels)
    if rate is not None and rate != config.sample_rate_hz:
        config = config.replace(sample_rate_hz=rate)
    if config.source != "rhd" or config.channels != data.shape[1] or chips is not None:
        config = rhd_config_for(config, data.shape[1],
                                tuple(chips) if chips else config.rhd.chips)
    flat = Path(path)
    if rate is not None:
        folder = folder or BUILD_ROOT / "feeds"
        folder.mkdir(parents=True, exist_ok=True)
        flat = folder / (hashlib.sha256(data.tobytes()).hexdigest()[:16] + ".i16")
        if not flat.exists():
            data.astype("<i2").tofile(flat)
    delays = None if cable_delay is None else (cable_delay,) * config.rhd.lines
    return config, SampleFeed(flat.resolve(), data.shape[1], repeat, delays)


def source_signal_feed(config: SystemConfig, seconds: float = 4.0) -> SampleFeed:
    """The test source's signal (golden model) as the chips' input, repeated."""
    from spikeforge.sim.models.source import source_signal

    sweeps = max(1, int(seconds * config.sample_rate_hz))
    folder = BUILD_ROOT / "feeds"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"test-signal-{config.channels}ch-{sweeps}.i16"
    if not path.exists():
        source_signal(config, sweeps).samples.astype("<i2").tofile(path)
    return SampleFeed(path.resolve(), config.channels, repeat=True)


def _rhd_arguments(config: SystemConfig, feed: SampleFeed) -> list[str]:
    from spikeforge.firmware.rhd2000 import channel_sources

    rhd = config.rhd
    if feed.channels != config.channels:
        raise VirtualBoardError(
            f"the sample file has {feed.channels} channels but the board streams "
            f"{config.channels}; give a file with one column per stream channel")
    if feed.cable_delays is not None:
        delays = feed.cable_delays
    elif rhd.calibrate_on_start:
        delays = (DEFAULT_CABLE_DELAY_CYCLES,) * rhd.lines
    else:
        delays = rhd.miso_delay_cycles  # read correctly at the configured delays
    mapping = ",".join(f"{s.line}:{s.amplifier}" for s in channel_sources(rhd))
    return ["--rhd-chips", ",".join(rhd.chips), "--rhd-delays", ",".join(map(str, delays)),
            "--rhd-samples", str(feed.path), "--rhd-file-channels", str(feed.channels),
            "--rhd-map", mapping, "--rhd-repeat", str(int(feed.repeat))]


def expected_recording(feed: SampleFeed, first_convert_cycle: int, config: SystemConfig,
                       sample_numbers: np.ndarray) -> np.ndarray:
    """What the device streams at ``sample_numbers`` (device sweeps) when its chips play
    ``feed`` and the first CONVERT ended in cycle ``first_convert_cycle`` (the harness's
    ``rhd_first_convert_cycle``): the front-end emits in sweep n the pass of sweep n-1, and
    pass k (counted from the first) converts frame k; zeros before the first pass and after
    the end of the file."""
    frames = feed.frames()
    first_pass = first_convert_cycle // config.cycles_per_sample
    index = np.asarray(sample_numbers, dtype=np.int64) - first_pass - 1
    if feed.repeat:
        valid = index >= 0
        index = np.where(valid, index % len(frames), 0)
    else:
        valid = (index >= 0) & (index < len(frames))
        index = np.where(valid, index, 0)
    out = frames[index]
    out[~valid] = 0
    return out
