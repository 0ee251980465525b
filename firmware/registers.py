"""The register map: control and status registers, defined once for device and host.

Registers are 32 bits wide at word addresses. The HDL register bank
(:class:`spikeforge.hdl.registers.RegisterBank`) is generated from :data:`REGISTERS`; host
accessors look registers up here by name. Later capabilities add their registers to this
table (thresholds, channel mask, modes) in the address block reserved for them.

Address blocks: 0x00-0x0F identity (read-only constants), 0x10-0x1F stream control,
0x20-0x3F counters (0x34-0x3F: the Ethernet link, ``link="ethernet"`` builds only),
0x40-0x7F front-end, 0x80-0xBF detection, 0xC0-0xFF compression.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .bandwidth import BandwidthMode, available_modes
from .config import SOURCES, SystemConfig
from .detection import COUNTER_BITS, K_BITS
from .errors import ConfigError
from .framing import WIRE_VERSION
from .identity import IDENTITY_MAGIC

__all__ = ["Register", "REGISTERS", "register", "identity_values", "reset_values",
           "ERROR_COUNTER_BITS", "CODEBOOK_WRITABLE", "GRID_WRITABLE", "PRIOR_WRITABLE",
           "WEIGHTS_WRITABLE", "ETHERNET_COUNTERS", "AUTH_COUNTERS"]


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    access: Literal["const", "rw", "status"]
    doc: str
    reset: int | Callable[[SystemConfig], int] = 0
    #: Only present in builds with this sample source (None: always).
    source: str | None = None
    #: Only present in builds for which this is true (None: always), so a capability a
    #: build lacks costs it no register.
    needs: Callable[[SystemConfig], bool] | None = None
    #: Bits the register holds; it reads zero-extended to 32 bits. An ``rw`` register keeps
    #: the low bits of a write; a ``status`` counter this narrow wraps at ``2**bits``. Narrow
    #: where the consumer uses fewer bits (or a count that wraps is enough): each bit is a
    #: flip-flop and a read-mux input in the register bank.
    bits: int | Callable[[SystemConfig], int] = 32

    def width(self, config: SystemConfig) -> int:
        """Bits the register holds in a build of ``config``."""
        return self.bits(config) if callable(self.bits) else self.bits

    def reset_value(self, config: SystemConfig) -> int:
        return self.reset(config) if callable(self.reset) else self.reset

    def present(self, config: SystemConfig) -> bool:
        return ((self.source is None or self.source == config.source)
                and (self.needs is None or self.needs(config)))

    @property
    def port_name(self) -> str:
        """Name of the register's port on the HDL register bank."""
        return self.name.lower()


#: Width of the error and drop counters (they wrap): what matters is whether and how fast
#: they grow, and 16 bits instead of 32 save a flip-flop, an adder bit and a read-mux input
#: per bit on the device.
ERROR_COUNTER_BITS = 16


def _ethernet(config: SystemConfig) -> bool:
    return config.link == "ethernet"


def _authenticated(config: SystemConfig) -> bool:
    return config.control_key is not None


def _stream_cipher(config: SystemConfig) -> bool:
    return config.stream_cipher


REGISTERS: tuple[Register, ...] = (
    Register("IDENTITY", 0x00, "const", "ASCII 'SPKF', little-endian"),
    Register("WIRE_VERSION", 0x01, "const", "wire format version the device speaks"),
    Register("CHANNELS", 0x02, "const", "number of channels"),
    Register("SAMPLE_RATE_HZ", 0x03, "const", "samples per second per channel"),
    Register("CLOCK_HZ", 0x04, "const", "system clock"),
    Register("SOURCE", 0x05, "const", "index of the sample source in config.SOURCES"),
    Register("STREAM_ENABLE", 0x10, "rw", "1: data frames are sent; 0: slots are skipped", 1,
             bits=1),
    # channel mask (hdl/channel_mask.py)
    Register("CHANNEL_MASK_INDEX", 0x11, "rw",
             "which 32-channel word CHANNEL_MASK and CHANNEL_MASK_IN_FORCE address",
             bits=lambda c: max(1, ((c.channels - 1) // 32).bit_length())),
    Register("CHANNEL_MASK", 0x12, "rw",
             "writing stores the word (channel 32*index+i at bit i) into the mask of the "
             "channels DATA frames carry, only while STREAM_ENABLE is 0 and no DATA frame is "
             "buffered, and only if at least one channel stays enabled (else ignored); reads "
             "the last value written",
             lambda c: c.channel_mask_words[0], bits=lambda c: min(32, c.channels)),
    Register("CHANNEL_MASK_IN_FORCE", 0x13, "status",
             "the mask word at CHANNEL_MASK_INDEX as the framer uses it (0 past the channels)"),
    Register("ENABLED_CHANNELS", 0x14, "status", "channels in each DATA sweep"),
    Register("FRAMES_SENT", 0x20, "status", "DATA and COMPRESSED frames sent since reset"),
    Register("FRAMES_DROPPED", 0x21, "status",
             "DATA and COMPRESSED frames dropped whole: link too slow",
             bits=ERROR_COUNTER_BITS),
    Register("SOURCE_OVERRUNS", 0x22, "status", "samples the source lost to a stalled consumer",
             bits=ERROR_COUNTER_BITS),
    Register("SWEEPS", 0x23, "status", "sample periods since reset (the device's clock)"),
    Register("EVENTS_EMITTED", 0x24, "status", "spike events the detector emitted"),
    Register("EVENTS_DROPPED", 0x25, "status",
             "events dropped whole: event queue or buffer full (link too slow)",
             bits=ERROR_COUNTER_BITS),
    Register("EVENT_FRAMES_SENT", 0x26, "status", "EVENTS frames sent"),
    # Control path (hdl/control.py): the UART receiver and command decoder.
    Register("COMMANDS_EXECUTED", 0x30, "status",
             "commands carried out (a retry answered from the stored reply is not counted)"),
    Register("COMMAND_ERRORS", 0x31, "status",
             "commands discarded: bad CRC, wrong type or length, truncated (timed out)",
             bits=ERROR_COUNTER_BITS),
    Register("COMMANDS_DROPPED", 0x32, "status",
             "good commands not carried out (retries not answered) because the reply "
             "buffer was full", bits=ERROR_COUNTER_BITS),
    Register("UART_FRAMING_ERRORS", 0x33, "status", "received bytes with a bad stop bit",
             bits=ERROR_COUNTER_BITS),
    # Authenticated control (builds with SystemConfig.control_key only; docs/wire-format.md).
    Register("AUTH_REFUSED", 0x2C, "status",
             "writes refused for want of a right tag: none (AUTH_REQUIRED) or a wrong one "
             "(AUTH_FAILED); a retry answered from the stored reply is not counted again",
             bits=ERROR_COUNTER_BITS, needs=_authenticated),
    Register("REPLAYS_REFUSED", 0x2D, "status",
             "commands with a right tag refused because their counter was not above "
             "AUTH_COUNTER (REPLAYED)", bits=ERROR_COUNTER_BITS, needs=_authenticated),
    Register("AUTH_COUNTER", 0x2E, "status",
             "the counter of the last authenticated command carried out; after a reset, "
             "the first counter of the first unspent epoch less one (AUTH_EPOCHS << 16)",
             needs=_authenticated),
    Register("AUTH_EPOCHS", 0x2F, "status",
             "bits 0..16: the epochs spent (counter bits 31..16 below it are refused for "
             "good), kept in the configuration flash; bit 24: read from the flash since "
             "reset; bit 25: the flash did not take a program (NOT_STORED)",
             needs=_authenticated),
    # Encrypted stream (builds with SystemConfig.stream_cipher only; docs/wire-format.md).
    Register("CIPHER_SESSION_LO", 0x15, "rw",
             "session bits 0..31 of the stream cipher's nonce, chosen at random by the host "
             "for this boot; write LO, then HI", needs=_stream_cipher),
    Register("CIPHER_SESSION_HI", 0x16, "rw",
             "session bits 32..55; its write sets the session: sealed frames go out from "
             "then on, and both session registers refuse writes until the next reset",
             bits=24, needs=_stream_cipher),
    Register("CIPHER_FRAMES_SEALED", 0x27, "status", "frames sent encrypted and tagged",
             needs=_stream_cipher),
    Register("CIPHER_FRAMES_WITHHELD", 0x28, "status",
             "neural-data frames not sent because no session was set yet",
             needs=_stream_cipher),
    # Ethernet link (hdl/ethernet/link.py), link="ethernet" builds only. The counters are
    # counted in the 125 MHz domains and copied into the register clock domain by a
    # request/acknowledge snapshot: they read a few cycles late, never torn.
    Register("ETH_DATAGRAMS_SENT", 0x34, "status", "data datagrams sent (one per wire frame)",
             needs=_ethernet),
    Register("ETH_DATAGRAMS_DROPPED", 0x35, "status",
             "wire frames not sent because no host was learned yet (no valid command)",
             bits=ERROR_COUNTER_BITS, needs=_ethernet),
    Register("ETH_FCS_ERRORS", 0x36, "status",
             "received frames with a bad FCS or a PHY error (rx_er)",
             bits=ERROR_COUNTER_BITS, needs=_ethernet),
    Register("ETH_ARP_ANSWERED", 0x37, "status", "ARP requests for the board's IP answered",
             bits=ERROR_COUNTER_BITS, needs=_ethernet),
    Register("ETH_PING_ANSWERED", 0x38, "status", "ICMP echo requests answered",
             bits=ERROR_COUNTER_BITS, needs=_ethernet),
    Register("ETH_RX_FILTERED", 0x39, "status",
             "good received frames dropped by the filter: another MAC, IP or port, or not "
             "ARP/ICMP echo/UDP", bits=ERROR_COUNTER_BITS, needs=_ethernet),
    Register("ETH_RX_OVERFLOWS", 0x3A, "status",
             "received frames dropped whole because the receive buffer was full",
             bits=ERROR_COUNTER_BITS, needs=_ethernet),
    Register("ETH_MAC_HI", 0x3B, "rw", "the board's MAC address, bits 47..32",
             lambda c: c.ethernet.mac >> 32, bits=16, needs=_ethernet),
    Register("ETH_MAC_LO", 0x3C, "rw", "the board's MAC address, bits 31..0",
             lambda c: c.ethernet.mac & 0xFFFF_FFFF, needs=_ethernet),
    Register("ETH_IP", 0x3D, "rw", "the board's IPv4 address (192.168.1.50 = 0xC0A80132)",
             lambda c: c.ethernet.ip, needs=_ethernet),
    Register("ETH_HOST_IP", 0x3E, "status",
             "IPv4 address of the learned host (0: none yet; the sender of the first valid "
             "command)", needs=_ethernet),
    # RHD2000 front-end (spikeforge.hdl.rhd2000); lists are start | length << 16.
    Register("RHD_CONTROL", 0x40, "rw",
             "bit 0: run the conversion loop; bit 1: use the delays found at start-up "
             "(RHD_FOUND_DELAYS) instead of RHD_MISO_DELAY",
             lambda c: 1 | int(c.rhd.calibrate_on_start) << 1, "rhd"),
    Register("RHD_LOOP_LIST", 0x41, "rw", "the conversion loop list",
             lambda c: _boot_list(c, "loop"), "rhd"),
    Register("RHD_ONESHOT_LIST", 0x42, "rw", "the one-shot list to run next",
             lambda c: _boot_list(c, "setup"), "rhd"),
    Register("RHD_ONESHOT_REQUEST", 0x43, "rw",
             "a one-shot list runs while this differs from RHD_ONESHOT_DONE (1: set-up at boot)",
             1, "rhd"),
    Register("RHD_ONESHOT_DONE", 0x44, "status", "one-shot lists finished", 0, "rhd"),
    Register("RHD_MISO_DELAY", 0x45, "rw", "MISO sampling delay, 4 bits per line (line 0 low)",
             lambda c: sum(d << 4 * i for i, d in enumerate(c.rhd.miso_delay_cycles)), "rhd"),
    Register("RHD_AUX0", 0x46, "rw", "auxiliary list 0", lambda c: _boot_list(c, "aux0"), "rhd"),
    Register("RHD_AUX1", 0x47, "rw", "auxiliary list 1", lambda c: _boot_list(c, "aux1"), "rhd"),
    Register("RHD_AUX2", 0x48, "rw", "auxiliary list 2", lambda c: _boot_list(c, "aux2"), "rhd"),
    Register("RHD_PROGRAM_ADDR", 0x49, "rw", "program memory address for RHD_PROGRAM_DATA", 0,
             "rhd"),
    Register("RHD_PROGRAM_DATA", 0x4A, "rw", "writing stores an 18-bit entry at the address",
             0, "rhd"),
    Register("RHD_CAPTURE_ADDR", 0x4B, "rw", "one-shot result to show in RHD_CAPTURE_DATA", 0,
             "rhd"),
    Register("RHD_CAPTURE_DATA", 0x4C, "status", "one-shot result (hdl.rhd2000.capture_address)",
             0, "rhd"),
    Register("RHD_WORDS", 0x4D, "status", "SPI words sent since reset", 0, "rhd"),
    Register("RHD_CHIPS", 0x4E, "status",
             "chip ID found per line at start-up, 8 bits per line (0: none)", 0, "rhd"),
    Register("RHD_FOUND_DELAYS", 0x4F, "status",
             "MISO delay chosen per line, 4 bits per line; bit 31: start-up calibration done",
             0, "rhd"),
    Register("RHD_GOOD_DELAYS_01", 0x50, "status",
             "delays that read the ROM correctly: line 0 bits 0-15, line 1 bits 16-31", 0, "rhd"),
    Register("RHD_GOOD_DELAYS_23", 0x51, "status", "the same for lines 2 and 3", 0, "rhd"),
    Register("DETECT_POLARITY", 0x80, "rw",
             "0 off, 1 negative-going, 2 positive-going, 3 both (config.detector.polarity)",
             lambda c: c.detector.polarity_code, bits=2),
    Register("DETECT_DEAD_SAMPLES", 0x81, "rw", "samples ignored after each event",
             lambda c: c.detector.dead_samples, bits=COUNTER_BITS),
    Register("DETECT_SNIPPET_PRE", 0x82, "rw",
             "snippet samples before the peak (clamped to max_snippet_pre)",
             lambda c: c.detector.snippet_pre, bits=8),
    Register("DETECT_SNIPPET_POST", 0x83, "rw",
             "snippet samples after the peak (clamped to max_snippet_post)",
             lambda c: c.detector.snippet_post, bits=8),
    Register("DETECT_K_CHANNEL", 0x84, "rw", "channel whose threshold DETECT_K writes",
             bits=lambda c: c.channel_bits),
    Register("DETECT_K", 0x85, "rw",
             "writing stores threshold k in sixteenths (80 = 5.0 sigma) for channel "
             "DETECT_K_CHANNEL; reads the last value written",
             lambda c: c.detector.threshold_k16, bits=K_BITS),
    Register("DETECT_NEO", 0x86, "rw", "1: detect on the nonlinear energy operator",
             lambda c: int(c.detector.neo), bits=1),
    # Bandwidth modes (docs/wire-format.md): what goes on the link, without a new bitstream.
    # Only built when there is a mode besides raw: a raw-only build is always raw (its
    # identity says it has neither coder nor detector), and spends no logic on them.
    Register("BANDWIDTH_MODE", 0xC0, "rw",
             "0 raw (DATA), 1 lossless (COMPRESSED), 2 events only, 3 events + LFP; a mode the "
             "build lacks (BANDWIDTH_MODES) is refused: the write is ignored. Takes effect at "
             "the next frame slot (DATA) or coder block (COMPRESSED)", bits=2,
             needs=lambda c: available_modes(c) != 1 << BandwidthMode.RAW),
    Register("BANDWIDTH_MODES", 0xC1, "const",
             "bit m set: the build runs bandwidth mode m (bandwidth.available_modes)",
             needs=lambda c: available_modes(c) != 1 << BandwidthMode.RAW),
    Register("COMPRESSED_BLOCKS_DAMAGED", 0xC2, "status",
             "coder blocks lost to a coder output overflow (also in FRAMES_DROPPED)",
             needs=lambda c: c.coded),
    # Codebook of the lossless coder (codec.codebook builds only; docs/compression.md,
    # "Loading the codebook"). Writes to these four are refused (ignored, the read-back
    # shows the value kept) while BANDWIDTH_MODE is lossless and until the coder's next block
    # starts after it left lossless, so no block that may be sent mixes two tables.
    Register("CODEBOOK_ENTRY", 0xC3, "rw",
             "writing stores table[bits 0..codebook_bits-1] = bits 16..31 (int16) in the "
             "coder's value table; reads the index last written (CODEBOOK_VALUE shows its "
             "entry)", bits=lambda c: c.codec.codebook_bits,
             needs=lambda c: c.codec.enabled and c.codec.codebook),
    Register("CODEBOOK_BASE", 0xC4, "rw", "codebook base (int16, two's complement)",
             bits=16, needs=lambda c: c.codec.enabled and c.codec.codebook),
    Register("CODEBOOK_MULTIPLIER", 0xC5, "rw", "codebook reciprocal multiplier",
             bits=16, needs=lambda c: c.codec.enabled and c.codec.codebook),
    Register("CODEBOOK_SHIFT", 0xC6, "rw", "codebook reciprocal shift (0..31)",
             bits=5, needs=lambda c: c.codec.enabled and c.codec.codebook),
    Register("CODEBOOK_VALUE", 0xC7, "status",
             "table[CODEBOOK_ENTRY] as the coder's memory holds it (int16 in 16 bits), "
             "refreshed within a sample period of a write: the host's read-back",
             bits=16, needs=lambda c: c.codec.enabled and c.codec.codebook),
    # Value grid of the v2 coder (codec_v2.grid builds; docs/compression.md, "v2 in the
    # system"). Writes refused as the codebook's are: while BANDWIDTH_MODE is lossless and
    # until the coder's next block after it left lossless.
    Register("GRID_ENTRY", 0xC8, "rw",
             "writing stores table[bits 0..11] = bits 12..29 (18-bit two's complement) in the "
             "v2 coder's grid table (ValueGrid.table)", bits=30,
             needs=lambda c: c.codec_v2.enabled and c.codec_v2.grid),
    Register("GRID_BASE", 0xC9, "rw", "grid base (18-bit two's complement, ValueGrid.base)",
             bits=18, needs=lambda c: c.codec_v2.enabled and c.codec_v2.grid),
    Register("GRID_RECIPROCAL", 0xCA, "rw", "grid reciprocal multiplier (ValueGrid.reciprocal"
             "[0])", bits=30, needs=lambda c: c.codec_v2.enabled and c.codec_v2.grid),
    Register("GRID_SHIFT", 0xCB, "rw", "grid reciprocal shift (ValueGrid.reciprocal[1])",
             bits=5, needs=lambda c: c.codec_v2.enabled and c.codec_v2.grid),
    Register("GRID_CODE_MAX", 0xCC, "rw", "largest grid code, 2**ValueGrid.bits - 1",
             bits=12, needs=lambda c: c.codec_v2.enabled and c.codec_v2.grid),
    # Restart prior of the v2 coder (codec_v2.restart_prior builds; docs/recording.md,
    # "Restart prior"). Writes refused as the grid's are.
    Register("PRIOR_ENTRY", 0xCD, "rw",
             "writing stores prior row[bits 0..3] entry c[bits 4..9 + 1] = bits 10..31 (a "
             "cumulative frequency at CDF_STATE_BITS) in the v2 coder's restart prior "
             "(compression_v2.prior_entry_word layout); reads the word last written",
             needs=lambda c: c.codec_v2.enabled and c.codec_v2.restart_prior),
    Register("PRIOR_ON", 0xCE, "rw",
             "1: every start and sync block of the v2 coder begins its context tables from "
             "the loaded prior at the slow rate; 0: from the built-in initial CDF", bits=1,
             needs=lambda c: c.codec_v2.enabled and c.codec_v2.restart_prior),
    # Code weights of the v2 coder (codec_v2.code_weights builds, which have a grid;
    # docs/recording.md, "Code weights"). Writes refused as the grid's are.
    Register("WEIGHT_PAIR", 0xCF, "rw",
             "writing stores entries 2 x bits 0..11 = bits 16..23 and 2 x bits 0..11 + 1 = "
             "bits 24..31 (weights 1..255, unit 64) of the v2 coder's padded code-weight "
             "table (compression_v2.weight_pair_word layout); reads the word last written",
             needs=lambda c: c.codec_v2.enabled and c.codec_v2.code_weights),
    Register("WEIGHTS_ON", 0xD0, "rw",
             "1: the v2 coder weights literal frequencies by the loaded code weights; 0: it "
             "codes as a build without code weights (the same bytes)", bits=1,
             needs=lambda c: c.codec_v2.enabled and c.codec_v2.code_weights),
)

#: The Ethernet link's status counters (lower-case: their ports on the register bank and on
#: :class:`spikeforge.hdl.ethernet.link.EthernetLink`).
ETHERNET_COUNTERS = ("ETH_DATAGRAMS_SENT", "ETH_DATAGRAMS_DROPPED", "ETH_FCS_ERRORS",
                     "ETH_ARP_ANSWERED", "ETH_PING_ANSWERED", "ETH_RX_FILTERED",
                     "ETH_RX_OVERFLOWS")

#: The authenticated control path's status registers (lower-case: their ports on the
#: register bank and on :class:`spikeforge.hdl.control.CommandDecoder`).
AUTH_COUNTERS = ("AUTH_REFUSED", "REPLAYS_REFUSED", "AUTH_COUNTER")

#: The codebook registers whose writes are refused while lossless blocks may be sent.
CODEBOOK_WRITABLE = ("CODEBOOK_ENTRY", "CODEBOOK_BASE", "CODEBOOK_MULTIPLIER",
                     "CODEBOOK_SHIFT")

#: The v2 grid registers whose writes are refused while lossless blocks may be sent.
GRID_WRITABLE = ("GRID_ENTRY", "GRID_BASE", "GRID_RECIPROCAL", "GRID_SHIFT", "GRID_CODE_MAX")

#: The v2 restart-prior registers whose writes are refused while lossless blocks may be sent.
PRIOR_WRITABLE = ("PRIOR_ENTRY", "PRIOR_ON")

#: The v2 code-weight registers whose writes are refused while lossless blocks may be sent.
WEIGHTS_WRITABLE = ("WEIGHT_PAIR", "WEIGHTS_ON")


def _boot_list(config: SystemConfig, name: str) -> int:
    from .rhd_programs import build_image

    start, length = build_image(config).lists[name]
    return start | length << 16

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
    values = {
        "IDENTITY": int.from_bytes(IDENTITY_MAGIC, "little"),
        "WIRE_VERSION": WIRE_VERSION,
        "CHANNELS": config.channels,
        "SAMPLE_RATE_HZ": config.sample_rate_hz,
        "CLOCK_HZ": config.clock_hz,
        "SOURCE": SOURCES.index(config.source),
        "BANDWIDTH_MODES": available_modes(config),
    }
    return {name: value for name, value in values.items() if register(name).present(config)}


def reset_values(config: SystemConfig) -> dict[str, int]:
    """Reset values of the ``rw`` registers present in a build of ``config``."""
    return {r.name: r.reset_value(config) for r in REGISTERS
            if r.access == "rw" and r.present(config)}
