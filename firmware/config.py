"""The device configuration: one frozen dataclass that every layer takes.

HDL elaboration, golden models, the host decoder and board builds all read the same
:class:`SystemConfig`. The device also sends it over the link (see
:mod:`spikeforge.firmware.identity`, the identity frame), so the host never guesses.

Every derived quantity (cycles per sample, UART divisor, frame sizes) is a property here
and nowhere else.
"""

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .compression import CodecConfig, worst_case_words
from .compression_v2 import CodecV2Config, worst_case_bits_v2
from .decimation import DecimatorConfig
from .detection import DETECTOR_SAME_CHANNEL_SPACING, DetectorConfig
from .errors import ConfigError
from .ethernet import (
    ETH_HEADER_BYTES,
    FCS_BYTES,
    FRAGMENT_PAYLOAD_BYTES,
    INTER_FRAME_GAP_BYTES,
    IPV4_HEADER_BYTES,
    LINK_RATE_BPS,
    PREAMBLE_SFD,
    UDP_HEADER_BYTES,
    EthernetConfig,
)
from .framing import DATA_FRAME_OVERHEAD_BYTES, MAX_PAYLOAD_BYTES
from .rhd2000 import MAX_SCLK_HZ, MIN_CS_HIGH_NS, RHDConfig
from .test_signal import SPIKE_TEMPLATE

__all__ = ["TestSourceConfig", "DetectorConfig", "SystemConfig", "SOURCES", "RHDConfig",
           "MIN_SAME_CHANNEL_SPACING", "CodecConfig", "format_channels", "parse_channels",
           "DecimatorConfig", "V2_CARRY_WORDS", "MAX_CHANNELS", "MAX_PAYLOAD_BYTES", "LINKS",
           "EthernetConfig", "read_config_file", "PLACE_AND_ROUTE_OPTIONS",
           "check_place_and_route"]

#: Sample sources the acquisition top can be built with. "test" is the built-in test-signal
#: generator; "rhd" the RHD2000 front-end (:mod:`spikeforge.hdl.rhd2000`).
SOURCES = ("test", "rhd")
#: Links the framer's byte stream can leave by: "uart" (8N1 at ``baud``, the default) or
#: "ethernet" (UDP over Gigabit Ethernet, :mod:`spikeforge.firmware.ethernet`;
#: :class:`spikeforge.hdl.ethernet.link.EthernetLink`).
LINKS = ("uart", "ethernet")

#: Words a v2 coded block can carry beyond its own bits' worth: bytes it inherits from the
#: blocks before (the coder's 4-byte low, its cached byte, a word's odd byte) and a flush
#: of 5 bytes with its pad (:attr:`SystemConfig.coded_worst_words`).
V2_CARRY_WORDS = 7
#: Largest channel count the wire format and the cores are sized for.
MAX_CHANNELS = 1024
#: Number of samples in the test source's spike template.
SPIKE_TEMPLATE_SAMPLES = len(SPIKE_TEMPLATE)
#: Largest relative baud-rate error a UART receiver tolerates comfortably (8N1).
MAX_BAUD_ERROR = 0.02
#: Fewest cycles between two samples of the same channel that the conditioner's
#: read-modify-write pipeline handles (its state memory is read transparently to its write
#: port, so back-to-back samples of one channel would work). The detector needs more,
#: :data:`~spikeforge.firmware.detection.DETECTOR_SAME_CHANNEL_SPACING`, checked when it is
#: built (``detector.enabled``).
MIN_SAME_CHANNEL_SPACING = 1


@dataclass(frozen=True)
class TestSourceConfig:
    """Parameters of the built-in test-signal source.

    The source adds three things per channel: a small DC offset, deterministic
    pseudo-random noise (triangular distribution, standard deviation about
    104 LSB >> ``noise_shift``), and spike waveforms that start at pseudo-random times with
    a mean rate of ``spike_rate_hz`` per channel. The golden model knows every spike time.
    """

    __test__ = False  # not a pytest test class, despite the name

    seed: int = 0x5EED
    noise_shift: int = 0
    spike_rate_hz: float = 20.0

    def validate(self, sample_rate_hz: int) -> None:
        if not 0 <= self.seed < 2**32:
            raise ConfigError(
                f"test source seed must be a 32-bit unsigned integer, not {self.seed!r}")
        if not 0 <= self.noise_shift <= 7:
            raise ConfigError(
                f"test source noise_shift must be 0..7, not {self.noise_shift!r}; "
                "each step halves the noise amplitude"
            )
        limit = sample_rate_hz / SPIKE_TEMPLATE_SAMPLES
        if not 0 <= self.spike_rate_hz <= limit:
            raise ConfigError(
                f"test source spike_rate_hz must be between 0 and {limit:g} Hz (one spike "
                f"template after another) at {sample_rate_hz} Hz, not {self.spike_rate_hz!r}"
            )

    def spike_start_threshold(self, sample_rate_hz: int) -> int:
        """A spike starts on an idle channel when a 16-bit random value is below this."""
        return min(round(self.spike_rate_hz / sample_rate_hz * 2**16), 2**16 - 1)


@dataclass(frozen=True)
class SystemConfig:
    """What the acquisition system is built for.

    Parameters
    ----------
    channels:
        Number of recording channels, served channel-serially (one sample per clock).
    sample_rate_hz:
        Samples per second per channel. Must divide ``clock_hz`` exactly, so the sample
        period is a whole number of clock cycles and the rate is exact.
    clock_hz:
        System clock of the gateware.
    baud:
        UART line rate of the link to the host (8N1). ``clock_hz / baud`` is rounded to a
        whole divisor; the resulting rate must be within 2 % of ``baud``.
    sweeps_per_frame:
        Sample periods ("sweeps": one sample of every channel) carried by one data frame.
    link_buffer_samples:
        Depth of the sample buffer in front of the link, in samples (a power of two). It
        must hold at least two frames; when it cannot take a whole frame, that frame is
        dropped and counted.
    identity_interval_frames:
        An identity frame is sent before the first data frame and then again at least every
        this many data-frame periods, so a host that connects late learns the configuration.
    source:
        Which sample source feeds the chain (one of :data:`SOURCES`).
    test_source:
        Parameters of the test-signal source.
    rhd:
        The RHD2000 front-end (chips, SPI timing, amplifier targets); used when
        ``source == "rhd"``.
    detector:
        Parameters of the conditioning and spike-detection cores.
    codec:
        Parameters of the lossless coder (``docs/compression.md``); disabled by default.
    codec_v2:
        Parameters of the v2 lossless coder (LMS + range coder over the ADC's value grid,
        ``docs/compression.md`` "v2"); disabled by default. A build has one lossless coder:
        ``codec`` or ``codec_v2``, not both. Its stream carries state from block to block;
        a host that lost a block resumes at the next sync block (``codec_v2.sync_blocks``,
        which a build needs > 0).
    channel_mask:
        The channels DATA frames carry after reset, as channel indices (``None``: every
        channel). The device can change it at run time (registers ``CHANNEL_MASK_INDEX`` /
        ``CHANNEL_MASK``, while the stream is stopped); builds without the control path keep
        it fixed. Only DATA frames are masked: conditioner, detector and coder see every
        channel. Stored sorted, and ``None`` when it names every channel.
    lfp:
        The LFP decimator (:class:`~spikeforge.firmware.decimation.DecimatorConfig`) that
        adds bandwidth mode 3, events + LFP (``docs/compression.md``); ``None`` (default):
        not built. LFP frames carry ``sweeps_per_frame`` decimated sweeps of the enabled
        channels, so one LFP frame spans ``sweeps_per_frame * lfp.factor`` sample periods.
    link:
        Which link carries the frames and commands (one of :data:`LINKS`): ``"uart"``
        (default) or ``"ethernet"``. With ``"ethernet"`` the top has GMII ports instead of
        the UART lines and ``baud`` plays no part (it is kept, and reported in the identity,
        but not checked against the clock).
    ethernet:
        The board's Ethernet addresses and ports
        (:class:`~spikeforge.firmware.ethernet.EthernetConfig`): the reset values of the
        ETH_MAC_HI / ETH_MAC_LO / ETH_IP registers. Only used with ``link="ethernet"``.
    control_key:
        The device's 128-bit control key, 32 hex digits (``spikeforge key new`` makes one
        and ``spikeforge key provision`` puts it in a build's configuration), or ``None``
        (default): commands are not authenticated, exactly as before. With a key every
        command that writes must carry a SipHash-2-4 tag and a fresh counter
        (``docs/wire-format.md``, "Authenticated commands"). The key is a build secret: it
        is never sent by the device (not in the identity) and never shown by ``repr``.
    stream_cipher:
        Build the link cipher (``docs/wire-format.md``, "Encrypted stream"): DATA, EVENTS,
        COMPRESSED and LFP frames leave encrypted (ChaCha20) and tagged (SipHash-2-4) under
        keys derived from ``control_key`` (required), once the host has set a session for
        the boot (registers ``CIPHER_SESSION_LO``/``HI``). Default off: nothing changes.
    place_and_route:
        nextpnr options for building this configuration (:data:`PLACE_AND_ROUTE_OPTIONS`),
        e.g. ``("--placer", "static", "--seed", "2")``: how the bitstream is placed and
        routed, not what it does; part of the build's digest. Default ``()``: nextpnr's
        defaults (HeAP placer, router1), and the key is left out of :meth:`to_dict`.
    """

    channels: int = 4
    sample_rate_hz: int = 30_000
    clock_hz: int = 12_000_000
    baud: int = 3_000_000
    sweeps_per_frame: int = 32
    link_buffer_samples: int = 2048
    identity_interval_frames: int = 1024
    source: str = "test"
    test_source: TestSourceConfig = field(default_factory=TestSourceConfig)
    rhd: RHDConfig = field(default_factory=RHDConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    codec_v2: CodecV2Config = field(default_factory=CodecV2Config)
    # -- channel mask --
    channel_mask: tuple[int, ...] | None = None
    # -- LFP (bandwidth mode 3) --
    lfp: DecimatorConfig | None = None
    # -- link --
    link: str = "uart"
    ethernet: EthernetConfig = field(default_factory=EthernetConfig)
    # -- authenticated control --
    control_key: str | None = field(default=None, repr=False)
    # -- encrypted stream --
    stream_cipher: bool = False
    # -- build strategy --
    place_and_route: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._validate()
        self._normalise_channel_mask()
        object.__setattr__(self, "place_and_route",
                           check_place_and_route(self.place_and_route))

    def _normalise_channel_mask(self) -> None:
        mask = self.channel_mask
        if mask is None:
            return
        if isinstance(mask, str | bytes) or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in mask):
            raise ConfigError(
                f"channel_mask must be a sequence of channel indices (or None for every "
                f"channel), not {mask!r}")
        enabled = tuple(sorted(set(mask)))
        if not enabled:
            raise ConfigError(
                "channel_mask must enable at least one channel; use None for every channel")
        if enabled[0] < 0 or enabled[-1] >= self.channels:
            raise ConfigError(
                f"channel_mask names channel(s) "
                f"{', '.join(str(c) for c in enabled if not 0 <= c < self.channels)}, but "
                f"the device has channels 0..{self.channels - 1}")
        object.__setattr__(self, "channel_mask",
                           None if len(enabled) == self.channels else enabled)

    # -- validation ---------------------------------------------------------------------------

    def _validate(self) -> None:
        for name in ("channels", "sample_rate_hz", "clock_hz", "baud", "sweeps_per_frame",
                     "link_buffer_samples", "identity_interval_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if self.channels > MAX_CHANNELS:
            raise ConfigError(
                f"channels must be at most {MAX_CHANNELS}, not {self.channels}"
            )
        if self.clock_hz % self.sample_rate_hz:
            near = [r for r in range(self.sample_rate_hz - 2000, self.sample_rate_hz + 2001)
                    if r > 0 and self.clock_hz % r == 0]
            near.sort(key=lambda r: abs(r - self.sample_rate_hz))
            rates = ", ".join(map(str, sorted(near[:2])))
            hint = f"; nearby exact rates: {rates} Hz" if near else ""
            raise ConfigError(
                f"sample_rate_hz {self.sample_rate_hz} does not divide clock_hz {self.clock_hz}, "
                f"so the sample period would not be a whole number of cycles{hint}"
            )
        if self.channels + 1 > self.cycles_per_sample:
            raise ConfigError(
                f"{self.channels} channels at {self.sample_rate_hz} Hz need "
                f"{self.channels * self.sample_rate_hz:,} samples/s plus one idle cycle per "
                f"sweep, but a {self.clock_hz / 1e6:g} MHz clock gives only "
                f"{self.cycles_per_sample} cycles per sample period; use at most "
                f"{self.cycles_per_sample - 1} channels, a lower rate, or a faster clock"
            )
        if self.link not in LINKS:
            raise ConfigError(f"link must be one of {', '.join(LINKS)}, not {self.link!r}")
        if not isinstance(self.ethernet, EthernetConfig):
            raise ConfigError(
                f"ethernet must be an EthernetConfig, not {type(self.ethernet).__name__}; "
                "e.g. ethernet=EthernetConfig(ip='192.168.1.50')")
        self._validate_control_key()
        if self.stream_cipher not in (False, True):
            raise ConfigError(f"stream_cipher must be true or false, not {self.stream_cipher!r}")
        if self.stream_cipher and self.control_key is None:
            raise ConfigError("stream_cipher needs the device's control key (its keys derive "
                              "from it); set control_key (`spikeforge key provision`) or "
                              "drop stream_cipher")
        divisor = self.uart_divisor
        actual = self.clock_hz / divisor
        if self.link == "ethernet":
            pass     # no UART: any baud is accepted (and stays in the identity)
        elif divisor < 1 or abs(actual - self.baud) / self.baud > MAX_BAUD_ERROR:
            raise ConfigError(
                f"baud {self.baud} cannot be made from a {self.clock_hz} Hz clock: the nearest "
                f"divisor {max(divisor, 1)} gives {self.clock_hz / max(divisor, 1):.0f} baud; "
                f"choose clock_hz / N for a whole N, e.g. {self.clock_hz // max(divisor, 1)}"
            )
        if self.link_buffer_samples & (self.link_buffer_samples - 1):
            raise ConfigError(
                f"link_buffer_samples must be a power of two, not {self.link_buffer_samples}"
            )
        if self.payload_bytes > MAX_PAYLOAD_BYTES:
            raise ConfigError(
                f"a data frame of {self.sweeps_per_frame} sweeps x {self.channels} channels is "
                f"{self.payload_bytes} bytes, over the {MAX_PAYLOAD_BYTES}-byte frame limit; "
                f"lower sweeps_per_frame to at most {MAX_PAYLOAD_BYTES // (2 * self.channels)}"
            )
        if 2 * self.frame_samples > self.link_buffer_samples:
            need = 1 << (2 * self.frame_samples - 1).bit_length()
            raise ConfigError(
                f"link_buffer_samples {self.link_buffer_samples} cannot hold two frames of "
                f"{self.frame_samples} samples; use link_buffer_samples={need} or fewer "
                f"sweeps_per_frame"
            )
        if self.source not in SOURCES:
            raise ConfigError(
                f"source must be one of {', '.join(SOURCES)}, not {self.source!r}"
            )
        if not isinstance(self.test_source, TestSourceConfig):
            raise ConfigError(
                f"test_source must be a TestSourceConfig, not {type(self.test_source).__name__}"
            )
        self.test_source.validate(self.sample_rate_hz)
        if not isinstance(self.detector, DetectorConfig):
            raise ConfigError(
                f"detector must be a DetectorConfig, not {type(self.detector).__name__}"
            )
        self.detector.validate(self.sample_rate_hz)
        # A sweep's channels are one cycle apart and the same channel comes back after
        # cycles_per_sample cycles; with one channel that is the closest spacing.
        if self.cycles_per_sample < MIN_SAME_CHANNEL_SPACING:
            raise ConfigError(
                f"samples of one channel must be at least {MIN_SAME_CHANNEL_SPACING} cycles "
                f"apart for the conditioner pipeline, not {self.cycles_per_sample}; lower the "
                f"sample rate or raise the clock"
            )
        self._validate_detector_spacing()
        if not isinstance(self.codec, CodecConfig):
            raise ConfigError(f"codec must be a CodecConfig, not {type(self.codec).__name__}")
        self._validate_codec_v2()
        self._validate_coded_buffer()
        if not isinstance(self.rhd, RHDConfig):
            raise ConfigError(f"rhd must be an RHDConfig, not {type(self.rhd).__name__}")
        if self.source == "rhd":
            self._validate_rhd()
        self._validate_lfp()

    def _validate_control_key(self) -> None:
        key = self.control_key
        if key is None:
            return
        if (not isinstance(key, str) or len(key) != 32
                or any(c not in "0123456789abcdefABCDEF" for c in key)):
            # The value is a secret: the message describes it, never shows it.
            what = (f"a {len(key)}-character string" if isinstance(key, str)
                    else type(key).__name__)
            raise ConfigError(f"control_key must be 32 hex digits (a 128-bit key), not {what}; "
                              "make one with `spikeforge key new DEVICE`")
        if self.link == "uart" and self.uart_divisor < 3:
            raise ConfigError(
                "control_key needs the control path, but this build has none (fewer than 3 "
                "clock cycles per UART bit); lower the baud rate or drop the key")

    @property
    def control_key_bytes(self) -> bytes | None:
        """The control key as 16 bytes (``None``: commands are not authenticated)."""
        return None if self.control_key is None else bytes.fromhex(self.control_key)

    def _validate_detector_spacing(self) -> None:
        """The detector writes a channel's state back DETECTOR_SAME_CHANNEL_SPACING cycles
        after reading it, so a channel's samples must come at least that far apart (the rule
        :class:`spikeforge.hdl.detector.Detector` also checks)."""
        spacing = DETECTOR_SAME_CHANNEL_SPACING
        if self.detector.enabled and self.cycles_per_sample < spacing:
            raise ConfigError(
                f"the spike detector needs samples of one channel at least {spacing} cycles "
                f"apart (it writes a channel's state back {spacing} cycles after reading it), "
                f"but {self.sample_rate_hz} Hz at {self.clock_hz / 1e6:g} MHz gives "
                f"{self.cycles_per_sample} cycles per sample period; raise clock_hz to at "
                f"least {spacing * self.sample_rate_hz}, lower sample_rate_hz to at most "
                f"{self.clock_hz // spacing}, or build without the detector "
                f"(detector=DetectorConfig(enabled=False))")

    def _validate_codec_v2(self) -> None:
        codec = self.codec_v2
        if not isinstance(codec, CodecV2Config):
            raise ConfigError(f"codec_v2 must be a CodecV2Config, not {type(codec).__name__}")
        if not codec.enabled:
            return
        if self.codec.enabled:
            raise ConfigError("a build has one lossless coder: codec and codec_v2 are both "
                              "enabled; set codec=CodecConfig(enabled=False) or codec_v2="
                              "CodecV2Config(enabled=False)")
        frame_bytes = 2 * self.coded_worst_words
        if frame_bytes > MAX_PAYLOAD_BYTES:
            raise ConfigError(
                f"a worst-case v2 block of {codec.block_sweeps} sweeps x {self.channels} "
                f"channels is {frame_bytes} bytes, over the {MAX_PAYLOAD_BYTES}-byte frame "
                f"limit; lower codec_v2 block_sweeps")
        if codec.sync_blocks == 0:
            raise ConfigError("a v2 build needs sync blocks (the stream carries state across "
                              "blocks: a host that lost one resumes at the next sync); set "
                              "codec_v2 sync_blocks > 0, e.g. 256")

    @property
    def coded(self) -> bool:
        """The build has a lossless coder (v1 ``codec`` or v2 ``codec_v2``)."""
        return self.codec.enabled or self.codec_v2.enabled

    @property
    def coded_block_sweeps(self) -> int:
        """Sweeps per coded block of the build's lossless coder (0: none)."""
        if self.codec_v2.enabled:
            return self.codec_v2.block_sweeps
        return self.codec.block_sweeps if self.codec.enabled else 0

    @property
    def coded_worst_words(self) -> int:
        """Most 16-bit words one coded block can put on the link (the framer reserves this
        much at a block's start). v2: the budget's bound in bits, plus the bytes a block can
        inherit from earlier ones (the coder's 4-byte low, its cached byte, a word's odd
        byte) and a flush with its pad (:data:`V2_CARRY_WORDS`); a block beyond it is
        dropped whole and counted (a 0xFF run longer than that, which no signal makes, is
        the only way there)."""
        if self.codec_v2.enabled:
            bits = worst_case_bits_v2(self.channels, self.codec_v2.block_sweeps)
            return -(-bits // 16) + V2_CARRY_WORDS
        return worst_case_words(self.channels, self.codec.block_sweeps, self.codec)

    def _validate_coded_buffer(self) -> None:
        """The framer's buffer for COMPRESSED frames must hold two worst-case coded blocks:
        one being sent while the next is admitted, else every other block is dropped even
        on a fast link (the rule :class:`spikeforge.hdl.framer.Framer` also checks)."""
        if not self.coded:
            return
        worst = self.coded_worst_words
        sweeps = self.coded_block_sweeps
        field_name = "codec_v2" if self.codec_v2.enabled else "codec"
        if 2 * worst > self.coded_buffer_words:
            need = 1 << (2 * worst - 1).bit_length()
            raise ConfigError(
                f"the link buffer ({self.link_buffer_samples} words) cannot hold two "
                f"worst-case coded blocks ({worst} words each: {self.channels} channels x "
                f"{sweeps} sweeps), one being sent while the next is admitted; "
                f"raise link_buffer_samples to {need} or lower {field_name}.block_sweeps")

    def _validate_lfp(self) -> None:
        if self.lfp is not None and not isinstance(self.lfp, DecimatorConfig):
            raise ConfigError(
                f"lfp must be a DecimatorConfig (or None: no LFP decimator), not "
                f"{type(self.lfp).__name__}; e.g. lfp=DecimatorConfig(factor=30, order=3)")
        if self.lfp is not None and not self.detector.enabled:
            raise ConfigError(
                "lfp needs the spike detector: the LFP decimator only serves bandwidth mode "
                "events+lfp, which sends EVENTS frames too; set detector=DetectorConfig("
                "enabled=True), or lfp=None")

    def _validate_rhd(self) -> None:
        rhd = self.rhd
        if self.channels != rhd.channels:
            per_chip = " + ".join(
                f"{bin(rhd.mask(line)).count('1')} ({name})" for line, name in
                enumerate(rhd.chips))
            raise ConfigError(
                f"channels must equal the enabled amplifiers of the RHD chips, "
                f"{per_chip} = {rhd.channels}, not {self.channels}; set channels={rhd.channels} "
                f"or change rhd.amplifier_masks")
        self._validate_rhd_timing()
        need = rhd.pass_cycles
        if need > self.cycles_per_sample:
            sclk_hz = self.clock_hz / (2 * rhd.sclk_half_period_cycles)
            best_rate = self.clock_hz // need
            raise ConfigError(
                f"the RHD conversion loop does not fit the sample period: {rhd.loop_words} "
                f"commands x {rhd.word_cycles} cycles per SPI word (SCLK {sclk_hz / 1e6:g} MHz) "
                f"+ {need - rhd.loop_words * rhd.word_cycles} cycles of set-up and result "
                f"latency = {need} cycles, but {self.sample_rate_hz} Hz at "
                f"{self.clock_hz / 1e6:g} MHz gives {self.cycles_per_sample}; lower the sample "
                f"rate to at most {best_rate} Hz, stream fewer amplifiers, or use a clock of at "
                f"least {need * self.sample_rate_hz / 1e6:g} MHz")

    def _validate_rhd_timing(self) -> None:
        """The datasheet's SPI limits at this clock: SCLK <= 25 MHz, CS high >= 154 ns."""
        rhd = self.rhd
        sclk_hz = self.clock_hz / (2 * rhd.sclk_half_period_cycles)
        if sclk_hz > MAX_SCLK_HZ:
            least = -(-self.clock_hz // (2 * MAX_SCLK_HZ))
            raise ConfigError(
                f"SCLK would be {sclk_hz / 1e6:g} MHz (clock {self.clock_hz / 1e6:g} MHz / 2 / "
                f"rhd.sclk_half_period_cycles {rhd.sclk_half_period_cycles}), over the RHD2000's "
                f"{MAX_SCLK_HZ / 1e6:g} MHz; set rhd.sclk_half_period_cycles={least}")
        cs_high_ns = rhd.cs_high_cycles * 1e9 / self.clock_hz
        if cs_high_ns < MIN_CS_HIGH_NS:
            least = -(-MIN_CS_HIGH_NS * self.clock_hz // 1_000_000_000)
            raise ConfigError(
                f"CS would stay high {cs_high_ns:.0f} ns between SPI words "
                f"(rhd.cs_high_cycles {rhd.cs_high_cycles} at {self.clock_hz / 1e6:g} MHz); the "
                f"RHD2000 needs at least {MIN_CS_HIGH_NS} ns: set rhd.cs_high_cycles={least}")

    # -- derived quantities -------------------------------------------------------------------

    @property
    def cycles_per_sample(self) -> int:
        """Clock cycles in one sample period (one sweep over all channels)."""
        return self.clock_hz // self.sample_rate_hz

    @property
    def uart_divisor(self) -> int:
        """Clock cycles per UART bit."""
        return round(self.clock_hz / self.baud)

    @property
    def cycles_per_byte(self) -> int:
        """Clock cycles the UART needs for one 8N1 byte (start, 8 data, stop)."""
        return 10 * self.uart_divisor

    @property
    def coded_buffer_words(self) -> int:
        """Size of the framer's link buffer for COMPRESSED frames, in 16-bit words: as many
        words as the raw buffer has samples (``link_buffer_samples``), so both modes ride out
        the same link stall in bytes. It holds at least two worst-case coded blocks
        (validated)."""
        return self.link_buffer_samples

    @property
    def frame_samples(self) -> int:
        return self.sweeps_per_frame * self.channels

    @property
    def payload_bytes(self) -> int:
        return 2 * self.frame_samples

    @property
    def enabled_channels(self) -> tuple[int, ...]:
        """The channels DATA frames carry after reset (``channel_mask``), ascending."""
        return tuple(range(self.channels)) if self.channel_mask is None else self.channel_mask

    @property
    def channel_mask_words(self) -> tuple[int, ...]:
        """The reset mask as 32-bit words, channel ``c`` at bit ``c % 32`` of word
        ``c // 32`` (the ``CHANNEL_MASK`` register's layout)."""
        words = [0] * (-(-self.channels // 32))
        for channel in self.enabled_channels:
            words[channel // 32] |= 1 << channel % 32
        return tuple(words)

    @property
    def lfp_rate_hz(self) -> float | None:
        """Sweeps per second of the decimated LFP stream (None: no LFP decimator)."""
        return None if self.lfp is None else self.lfp.output_rate_hz(self.sample_rate_hz)

    @property
    def spike_start_threshold(self) -> int:
        return self.test_source.spike_start_threshold(self.sample_rate_hz)

    @property
    def channel_bits(self) -> int:
        """Width of a channel number on the datapath."""
        return max(1, (self.channels - 1).bit_length())

    @property
    def link_load(self) -> float:
        """Fraction of the link that the continuous stream needs (>1: frames will drop).

        Ethernet: the line bytes of each frame's datagram (preamble, headers, FCS and gap of
        each IPv4 fragment, the UDP header) against 125 MB/s."""
        bytes_per_frame = self.payload_bytes + DATA_FRAME_OVERHEAD_BYTES
        frame_period_s = self.sweeps_per_frame / self.sample_rate_hz
        if self.link == "ethernet":
            ip_bytes = bytes_per_frame + UDP_HEADER_BYTES
            fragments = -(-ip_bytes // FRAGMENT_PAYLOAD_BYTES)
            per_fragment = (len(PREAMBLE_SFD) + ETH_HEADER_BYTES + IPV4_HEADER_BYTES
                            + FCS_BYTES + INTER_FRAME_GAP_BYTES)
            line_bytes = ip_bytes + fragments * per_fragment
            return line_bytes / frame_period_s / (LINK_RATE_BPS / 8)
        link_bytes_per_s = self.clock_hz / self.cycles_per_byte
        return bytes_per_frame / frame_period_s / link_bytes_per_s

    # -- conversions --------------------------------------------------------------------------

    def replace(self, **changes: Any) -> "SystemConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, TestSourceConfig | RHDConfig | DetectorConfig | CodecConfig
                          | CodecV2Config | DecimatorConfig | EthernetConfig):
                value = {g.name: getattr(value, g.name) for g in fields(value)}
            out[f.name] = value
        if not self.place_and_route:
            del out["place_and_route"]      # builds without a strategy keep their digests
        else:
            out["place_and_route"] = list(self.place_and_route)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SystemConfig":
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"unknown configuration field(s) {', '.join(sorted(unknown))}; "
                f"known fields are {', '.join(sorted(known))}"
            )
        if isinstance(data.get("test_source"), dict):
            data["test_source"] = TestSourceConfig(**data["test_source"])
        if isinstance(data.get("rhd"), dict):
            data["rhd"] = RHDConfig(**data["rhd"])
        if isinstance(data.get("detector"), dict):
            data["detector"] = DetectorConfig(**data["detector"])
        if isinstance(data.get("codec"), dict):
            data["codec"] = CodecConfig(**data["codec"])
        if isinstance(data.get("codec_v2"), dict):
            data["codec_v2"] = CodecV2Config(**data["codec_v2"])
        if isinstance(data.get("channel_mask"), list):
            data["channel_mask"] = tuple(data["channel_mask"])
        if isinstance(data.get("lfp"), dict):
            data["lfp"] = DecimatorConfig(**data["lfp"])
        if isinstance(data.get("ethernet"), dict):
            try:
                data["ethernet"] = EthernetConfig(**data["ethernet"])
            except TypeError as exc:
                raise ConfigError(f"ethernet: {exc}; known fields are mac, ip, data_port, "
                                  "control_port") from None
        return cls(**data)

    def describe(self) -> str:
        """A one-line human summary, used in bench tables and logs."""
        source = "" if self.source == "test" else f"{self.source}:{'+'.join(self.rhd.chips)} "
        link = (f"baud={self.baud / 1e6:g}M" if self.link == "uart"
                else f"ethernet={self.ethernet.ip_text}")
        return (
            f"{source}{self.channels}ch@{self.sample_rate_hz / 1000:g}kS/s "
            f"clk={self.clock_hz / 1e6:g}MHz {link} "
            f"spf={self.sweeps_per_frame} load={self.link_load:.0%}"
            + ("" if self.channel_mask is None
               else f" mask={format_channels(self.channel_mask)}")
            + ("" if self.lfp is None else f" lfp=/{self.lfp.factor}x{self.lfp.order}")
            + ("" if self.control_key is None else " auth")
            + (" cipher" if self.stream_cipher else "")
        )


def format_channels(channels: "tuple[int, ...] | list[int]") -> str:
    """Channel indices as ranges, ``0,2,5-7`` (the form ``parse_channels`` reads)."""
    parts: list[str] = []
    values = sorted(set(channels))
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and values[end + 1] == values[end] + 1:
            end += 1
        parts.append(str(values[start]) if end == start
                     else f"{values[start]}-{values[end]}")
        start = end + 1
    return ",".join(parts)


def parse_channels(text: str) -> tuple[int, ...]:
    """``"0,2,5-7"`` -> ``(0, 2, 5, 6, 7)``; raises :class:`ConfigError` naming the bad part."""
    channels: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if high < low:
                    raise ValueError
                channels.update(range(low, high + 1))
            else:
                channels.add(int(part))
        except ValueError:
            raise ConfigError(
                f"cannot read channel list {text!r} at {part!r}; write channel numbers and "
                f"ranges separated by commas, e.g. 0,2,5-7") from None
    return tuple(sorted(channels))


#: The nextpnr options ``place_and_route`` may hold, each with its allowed values (a tuple),
#: ``int`` (a number follows) or ``None`` (a flag alone).
PLACE_AND_ROUTE_OPTIONS: dict[str, tuple[str, ...] | type | None] = {
    "--placer": ("heap", "static", "sa"),
    "--router": ("router1", "router2"),
    "--seed": int,
    "--tmg-ripup": None,
}


def check_place_and_route(options: Any) -> tuple[str, ...]:
    """``options`` as a tuple of nextpnr arguments, or a :class:`ConfigError` naming the
    first one :data:`PLACE_AND_ROUTE_OPTIONS` does not allow."""
    if isinstance(options, str | bytes) or not all(isinstance(o, str) for o in options):
        raise ConfigError(f"place_and_route must be a list of nextpnr arguments, e.g. "
                          f'["--placer", "static", "--seed", "2"], not {options!r}')
    options = tuple(options)
    allowed = ", ".join(PLACE_AND_ROUTE_OPTIONS)
    i = 0
    while i < len(options):
        name = options[i]
        if name not in PLACE_AND_ROUTE_OPTIONS:
            raise ConfigError(f"place_and_route: {name!r} is not an option it takes; "
                              f"allowed: {allowed}")
        kind = PLACE_AND_ROUTE_OPTIONS[name]
        if kind is not None:
            value = options[i + 1] if i + 1 < len(options) else None
            good = value is not None and (value.isdigit() if kind is int else value in kind)
            if not good:
                wanted = "a number" if kind is int else "one of " + ", ".join(kind)
                raise ConfigError(f"place_and_route: {name} needs {wanted}, not {value!r}")
            i += 1
        i += 1
    return options


def read_config_file(path: "str | os.PathLike[str]") -> dict[str, Any]:
    """The fields of a configuration file (a JSON object of :class:`SystemConfig` fields),
    not yet validated; a missing, unreadable or malformed file is a :class:`ConfigError`
    that names it."""
    import json
    from pathlib import Path

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {str(path)!r} does not exist; check the "
                          "path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {str(path)!r}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"configuration file {str(path)!r} is not valid JSON ({exc}); "
                          "is it complete? Fields as in `spikeforge config --channels 8`") \
            from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {str(path)!r} holds a JSON "
                          f"{type(data).__name__}, not an object of SystemConfig fields "
                          "(e.g. {\"channels\": 8})")
    return data
