"""The virtual board: the acquisition system compiled with Verilator into a process whose
UART is a TCP socket, so the host records from simulated hardware exactly as from a board.

The C++ harness (``main.cpp``) clocks the Verilated design, decodes ``uart_tx`` at bit level
like a USB-serial bridge, and sends the bytes to one TCP client; no Python runs per cycle.
Builds are cached under ``build/vboard/<digest>/`` by the generated Verilog.
"""

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import ConfigError, SpikeforgeError

from ..toolchain import verilator_environment

__all__ = ["VirtualBoard", "build_virtual_board", "config_from_sim_url", "VirtualBoardError"]

_HARNESS = Path(__file__).with_name("main.cpp")
BUILD_ROOT = Path(os.environ.get("SPIKEFORGE_BUILD", "build")) / "vboard"


#: Speed matters more than debug visibility here: X values resolved at compile time, no
#: assertions, optimised C++ for this machine.
_VERILATOR_FLAGS = (
    "--cc", "--exe", "--build", "-j", "2", "-O3", "-Wno-fatal", "--x-assign", "fast",
    "--x-initial", "fast", "--noassert", "--top-module", "top", "--prefix", "Vtop",
    "-CFLAGS", "-O3 -march=native",
)


class VirtualBoardError(SpikeforgeError):
    exit_code = 4


def config_from_sim_url(url: str) -> SystemConfig:
    """``sim://?channels=32&sample_rate_hz=20000`` or ``sim://path/to/config.json``."""
    parsed = urlparse(url)
    if parsed.scheme != "sim":
        raise ConfigError(f"a virtual board URL starts with sim://, not {url!r}")
    location = (parsed.netloc + parsed.path).strip()
    if location:
        import json

        data = json.loads(Path(location).read_text())
    else:
        data = {}
    for key, value in parse_qsl(parsed.query):
        data[key] = int(value) if value.lstrip("-").isdigit() else value
    return SystemConfig.from_dict(data)


def build_virtual_board(config: SystemConfig) -> Path:
    """Compile the virtual board for ``config`` (cached); return the executable."""
    from amaranth.back import verilog

    from spikeforge.hdl.top import AcquisitionSystem

    source = verilog.convert(AcquisitionSystem(config), name="top", emit_src=False)
    digest = hashlib.sha256(
        source.encode() + _HARNESS.read_bytes() + " ".join(_VERILATOR_FLAGS).encode()
    ).hexdigest()[:16]
    folder = (BUILD_ROOT / digest).resolve()
    binary = folder / "vboard"
    if binary.exists():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.v").write_text(source)
    env = {**os.environ, **verilator_environment()}
    command = [
        "verilator", *_VERILATOR_FLAGS, "-Mdir", str(folder / "obj"),
        "-o", str(binary), str(folder / "top.v"), str(_HARNESS),
    ]
    log = folder / "build.log"
    with open(log, "w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0 or not binary.exists():
        raise VirtualBoardError(f"building the virtual board failed; see {log}")
    return binary


@dataclass
class VirtualBoard:
    """A running virtual board. ``url`` is what :class:`spikeforge.host.Device` opens."""

    process: subprocess.Popen
    url: str
    config: SystemConfig

    @classmethod
    def start(cls, config: SystemConfig, *, port: int = 0, cycles: int = 0,
              realtime: bool = False, stats_file: Path | None = None) -> "VirtualBoard":
        binary = build_virtual_board(config)
        command = [str(binary), "--port", str(port), "--divisor", str(config.uart_divisor),
                   "--cycles", str(cycles)]
        if realtime:
            command += ["--realtime", str(config.clock_hz)]
        if stats_file is not None:
            command += ["--stats", str(stats_file)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        first = process.stdout.readline() if process.stdout else ""
        if not first.startswith("listening on "):
            process.kill()
            raise VirtualBoardError(f"the virtual board did not start: {first!r}")
        return cls(process, f"socket://127.0.0.1:{int(first.split()[-1])}", config)

    @classmethod
    def measure(cls, config: SystemConfig, cycles: int) -> dict[str, float]:
        """Run ``cycles`` cycles with a client that drains the socket; return the speed
        (simulated cycles per wall second and the ratio to real time)."""
        import socket

        board = cls.start(config, cycles=cycles)
        host, port = board.url.removeprefix("socket://").split(":")
        received = 0
        with socket.create_connection((host, int(port))) as client:
            while chunk := client.recv(1 << 16):
                received += len(chunk)
        fields = board.stop().split()
        stats = {fields[i]: float(fields[i + 1]) for i in range(0, len(fields) - 1, 2)}
        stats["bytes_received"] = received
        stats["realtime_ratio"] = stats["cycles_per_s"] / config.clock_hz
        return stats

    def stop(self) -> str:
        """Stop the board; return its statistics line."""
        if self.process.poll() is None:
            self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return out.strip()
