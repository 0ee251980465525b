"""The register map: control and status registers, defined once for device and host.

Registers are 32 bits wide at word addresses. The HDL register bank
(:class:`spikeforge.hdl.registers.RegisterBank`) is generated from :data:`REGISTERS`; host
accessors look registers up here by name. Later capabilities add their registers to this
table (thresholds, channel mask, modes) in the address block reserved for them.

Address blocks: 0x00-0x0F identity (read-only constants), 0x10-0x1F stream control,
0x20-0x3F counters, 0x40-0x7F front-end, 0x80-0xBF detection, 0xC0-0xFF compression.
"""

from dataclasses import dataclass
from typing import Literal

from .config import SOURCES, SystemConfig
from .errors import ConfigError
from .wire import IDENTITY_MAGIC, WIRE_VERSION

__all__ = ["Register", "REGISTERS", "register", "identity_values", "reset_values"]


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    access: Literal["const", "rw", "status"]
    doc: str
    reset: int = 0

    @property
    def port_name(self) -> str:
        """Name of the register's port on the HDL register bank."""
        return self.name.lower()


REGISTERS: tuple[Register, ...] = (
    Register("IDENTITY", 0x00, "const", "ASCII 'SPKF', little-endian"),
    Register("WIRE_VERSION", 0x01, "const", "wire format version the device speaks"),
    Register("CHANNELS", 0x02, "const", "number of channels"),
    Register("SAMPLE_RATE_HZ", 0x03, "const", "samples per second per channel"),
    Register("CLOCK_HZ", 0x04, "const", "system clock"),
    Register("SOURCE", 0x05, "const", "index of the sample source in config.SOURCES"),
    Register("STREAM_ENABLE", 0x10, "rw", "1: data frames are sent; 0: slots are skipped", 1),
    Register("FRAMES_SENT", 0x20, "status", "DATA frames sent since reset"),
    Register("FRAMES_DROPPED", 0x21, "status", "DATA frames dropped whole: link too slow"),
    Register("SOURCE_OVERRUNS", 0x22, "status", "samples the source lost to a stalled consumer"),
    Register("SWEEPS", 0x23, "status", "sample periods since reset (the device's clock)"),
    Register("EVENTS_EMITTED", 0x24, "status", "spike events the detector emitted"),
    Register("EVENTS_DROPPED", 0x25, "status",
             "events dropped whole: event queue or buffer full (link too slow)"),
    Register("EVENT_FRAMES_SENT", 0x26, "status", "EVENTS frames sent"),
    Register("DETECT_POLARITY", 0x80, "rw",
             "0 off, 1 negative-going, 2 positive-going, 3 both (config.detector.polarity)"),
    Register("DETECT_DEAD_SAMPLES", 0x81, "rw", "samples ignored after each event"),
    Register("DETECT_SNIPPET_PRE", 0x82, "rw",
             "snippet samples before the peak (clamped to max_snippet_pre)"),
    Register("DETECT_SNIPPET_POST", 0x83, "rw",
             "snippet samples after the peak (clamped to max_snippet_post)"),
    Register("DETECT_K_CHANNEL", 0x84, "rw", "channel whose threshold DETECT_K writes"),
    Register("DETECT_K", 0x85, "rw",
             "writing stores threshold k in sixteenths (80 = 5.0 sigma) for channel "
             "DETECT_K_CHANNEL; reads the last value written"),
    Register("DETECT_NEO", 0x86, "rw", "1: detect on the nonlinear energy operator"),
)

_BY_NAME = {r.name: r for r in REGISTERS}
assert len({r.address for r in REGISTERS}) == len(REGISTERS), "register addresses clash"


def register(name: str) -> Register:
    try:
        return _BY_NAME[name.upper()]
    except KeyError:
        raise ConfigError(
            f"no register named {name!r}; known registers: {', '.join(_BY_NAME)}"
        ) from None


def identity_values(config: SystemConfig) -> dict[str, int]:
    """Values of the constant registers for a build of ``config``."""
    return {
        "IDENTITY": int.from_bytes(IDENTITY_MAGIC, "little"),
        "WIRE_VERSION": WIRE_VERSION,
        "CHANNELS": config.channels,
        "SAMPLE_RATE_HZ": config.sample_rate_hz,
        "CLOCK_HZ": config.clock_hz,
        "SOURCE": SOURCES.index(config.source),
    }


def reset_values(config: SystemConfig) -> dict[str, int]:
    """Reset values of the ``rw`` registers for a build of ``config`` (the table's own reset,
    or the configuration's default where the configuration sets one)."""
    det = config.detector
    values = {r.name: r.reset for r in REGISTERS if r.access == "rw"}
    values.update({
        "DETECT_POLARITY": det.polarity_code,
        "DETECT_DEAD_SAMPLES": det.dead_samples,
        "DETECT_SNIPPET_PRE": det.snippet_pre,
        "DETECT_SNIPPET_POST": det.snippet_post,
        "DETECT_K": det.threshold_k16,
        "DETECT_NEO": int(det.neo),
    })
    return values
