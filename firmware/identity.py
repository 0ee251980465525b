"""The identity codec: the IDENTITY payload that carries the device's configuration.

The device sends its :class:`~spikeforge.firmware.config.SystemConfig` in IDENTITY frames
(before the first data frame and then every ``identity_interval_frames``), so the host learns
channels, rates and formats from the device itself and never guesses. This module sits above
:mod:`~spikeforge.firmware.config` and :mod:`~spikeforge.firmware.framing` (the wire version);
neither imports it.

The payload is a fixed part (general fields, the RHD front-end, the detector, the codec, the
LFP decimator, since version 6 the v2 coder) and then the reset channel mask, one
little-endian uint32 per 32 channels. A version 5 payload (without the v2 coder) still
decodes, as a build with ``codec_v2`` disabled.
"""

import struct

from .compression import CodecConfig
from .compression_v2 import CodecV2Config
from .config import LINKS, SOURCES, SystemConfig, TestSourceConfig
from .decimation import DecimatorConfig
from .detection import POLARITIES, DetectorConfig
from .errors import ConfigError, WireFormatError
from .framing import WIRE_VERSION
from .rhd2000 import CHIPS, MAX_MISO_LINES, ChipKind, RHDConfig

__all__ = ["IDENTITY_MAGIC", "IDENTITY_PAYLOAD_BYTES", "identity_payload_bytes",
           "encode_identity", "decode_identity"]

IDENTITY_MAGIC = b"SPKF"
#: magic, wire version, source index, noise_shift, link index (in config.LINKS; was
#: reserved, 0 = uart, so older devices read as UART ones), channels, sample rate, clock,
#: baud, sweeps per frame, link buffer samples, identity interval, test seed,
#: spike rate in mHz.
_IDENTITY = struct.Struct("<4sBBBBHIIIHIIII")
#: RHD front-end (version 2): chip IDs per line (0: none), amplifier masks (0: all), SCLK
#: half period, CS-high cycles, MISO delays, upper/lower/DSP cutoff in mHz, two's complement,
#: calibrate on start.
_RHD = struct.Struct("<4B4QBB4BIIIBB")


def _encode_rhd(rhd: RHDConfig) -> bytes:
    pad = MAX_MISO_LINES - rhd.lines
    masks = rhd.amplifier_masks or (0,) * rhd.lines
    return _RHD.pack(
        *[int(CHIPS[c].kind) for c in rhd.chips], *[0] * pad, *masks, *[0] * pad,
        rhd.sclk_half_period_cycles, rhd.cs_high_cycles, *rhd.miso_delay_cycles, *[0] * pad,
        round(rhd.upper_cutoff_hz * 1000), round(rhd.lower_cutoff_hz * 1000),
        round(rhd.dsp_cutoff_hz * 1000), int(rhd.twos_complement),
        int(rhd.calibrate_on_start))


def _decode_rhd(payload: bytes) -> RHDConfig:
    fields = _RHD.unpack(payload)
    ids, masks, (half, cs_high), delays = fields[:4], fields[4:8], fields[8:10], fields[10:14]
    upper, lower, dsp, twos, calibrate = fields[14:]
    lines = sum(1 for i in ids if i)
    try:
        chips = tuple(ChipKind(i).name for i in ids[:lines])
    except ValueError:
        raise WireFormatError(f"device reports unknown RHD chip IDs {ids}; update the host") \
            from None
    return RHDConfig(
        chips=chips, amplifier_masks=None if not any(masks) else masks[:lines],
        sclk_half_period_cycles=half, cs_high_cycles=cs_high, miso_delay_cycles=delays[:lines],
        upper_cutoff_hz=upper / 1000, lower_cutoff_hz=lower / 1000, dsp_cutoff_hz=dsp / 1000,
        twos_complement=bool(twos), calibrate_on_start=bool(calibrate))
#: The detector's configuration, after the fields above: dc_shift, polarity code,
#: align_samples, snippet_pre, snippet_post, max_snippet_pre, max_snippet_post, threshold k
#: in sixteenths, noise_step, noise_init_lsb, dead_samples, event_queue, event_buffer_words,
#: highpass_hz, lowpass_hz (float64, exact), neo, neo_shift, enabled.
_DETECTOR = struct.Struct("<BBBBBBBBHHHHIddBBB")
#: The lossless coder's configuration (version 3), after the detector's: enabled,
#: block_sweeps, predictor code (0..3 fixed order, 4 adaptive), rice_shift, select_shift,
#: initial_k, escape_threshold, codebook, codebook_bits.
_CODEC = struct.Struct("<BHBBBBBBB")
#: The LFP decimator (version 5), after the codec's: built, factor, order (0, 0 if not built).
_LFP = struct.Struct("<BHB")
#: The v2 lossless coder (version 6), after the LFP decimator's: enabled, block_sweeps,
#: sync_blocks, taps, weight_bits, mu, level_tap, rate_max, contexts, shift_offset, grid,
#: grid_bits, code_weights.
_CODEC_V2 = struct.Struct("<BHIBBBBBBBBBB")
#: The oldest identity version this host still decodes (version 5: no v2 coder).
_OLDEST_VERSION = 5
#: The fixed part of an IDENTITY payload; since version 4 the reset channel mask follows
#: (:func:`identity_payload_bytes`).
IDENTITY_PAYLOAD_BYTES = (_IDENTITY.size + _RHD.size + _DETECTOR.size + _CODEC.size + _LFP.size
                          + _CODEC_V2.size)
#: The fixed part of a version 5 payload (no v2 coder).
_V5_PAYLOAD_BYTES = IDENTITY_PAYLOAD_BYTES - _CODEC_V2.size


# -- channel mask --
def identity_payload_bytes(channels: int, version: int = WIRE_VERSION) -> int:
    """Length of the IDENTITY payload of a device with ``channels`` channels: the fixed part
    and the reset channel mask, one little-endian uint32 per 32 channels (channel ``c`` at
    bit ``c % 32`` of word ``c // 32``, as the ``CHANNEL_MASK`` register). ``version``: the
    payload's wire version (5: without the v2 coder)."""
    fixed = _V5_PAYLOAD_BYTES if version == _OLDEST_VERSION else IDENTITY_PAYLOAD_BYTES
    return fixed + 4 * -(-channels // 32)


def _encode_mask(config: SystemConfig) -> bytes:
    return b"".join(word.to_bytes(4, "little") for word in config.channel_mask_words)


def _decode_mask(payload: bytes, channels: int) -> tuple[int, ...]:
    words = [int.from_bytes(payload[i:i + 4], "little") for i in range(0, len(payload), 4)]
    return tuple(c for c in range(channels) if words[c // 32] >> c % 32 & 1)
_POLARITY_NAMES = {code: name for name, code in POLARITIES.items()}


def encode_identity(config: SystemConfig) -> bytes:
    """The IDENTITY payload that describes ``config``."""
    ts = config.test_source
    det = config.detector
    return _IDENTITY.pack(
        IDENTITY_MAGIC, WIRE_VERSION, SOURCES.index(config.source), ts.noise_shift,
        LINKS.index(config.link),
        config.channels, config.sample_rate_hz, config.clock_hz, config.baud,
        config.sweeps_per_frame, config.link_buffer_samples, config.identity_interval_frames,
        ts.seed, round(ts.spike_rate_hz * 1000),
    ) + _encode_rhd(config.rhd) + _DETECTOR.pack(
        det.dc_shift, det.polarity_code, det.align_samples, det.snippet_pre, det.snippet_post,
        det.max_snippet_pre, det.max_snippet_post, det.threshold_k16, det.noise_step,
        det.noise_init_lsb, det.dead_samples, det.event_queue, det.event_buffer_words,
        det.highpass_hz, det.lowpass_hz, int(det.neo), det.neo_shift, int(det.enabled),
    ) + _encode_codec(config.codec) + _encode_lfp(config.lfp) \
        + _encode_codec_v2(config.codec_v2) + _encode_mask(config)


def _encode_codec_v2(codec: CodecV2Config) -> bytes:
    return _CODEC_V2.pack(
        int(codec.enabled), codec.block_sweeps, codec.sync_blocks, codec.taps,
        codec.weight_bits, codec.mu, int(codec.level_tap), codec.rate_max, codec.contexts,
        codec.shift_offset, int(codec.grid), codec.grid_bits,
        int(codec.code_weights) | int(codec.restart_prior) << 1)


def _decode_codec_v2(payload: bytes, offset: int) -> CodecV2Config:
    (enabled, block_sweeps, sync_blocks, taps, weight_bits, mu, level_tap, rate_max, contexts,
     shift_offset, grid, grid_bits, options) = _CODEC_V2.unpack_from(payload, offset)
    # The last byte's bit 0 is code_weights, bit 1 restart_prior (a host that predates the
    # prior refuses a device with it: the byte reads above 1).
    if options > 3:
        raise WireFormatError(f"device reports codec v2 options {options:#x}: bits above 1 "
                              "are not defined; update the host")
    code_weights, restart_prior = options & 1, options >> 1
    flags = {"enabled": enabled, "level_tap": level_tap, "grid": grid}
    for name, value in flags.items():
        if value > 1:
            raise WireFormatError(f"device reports codec v2 {name} = {value}, not 0 or 1")
    try:
        return CodecV2Config(
            enabled=bool(enabled), block_sweeps=block_sweeps, sync_blocks=sync_blocks,
            taps=taps, weight_bits=weight_bits, mu=mu, level_tap=bool(level_tap),
            rate_max=rate_max, contexts=contexts, shift_offset=shift_offset, grid=bool(grid),
            grid_bits=grid_bits, code_weights=bool(code_weights),
            restart_prior=bool(restart_prior))
    except ConfigError as error:
        raise WireFormatError(f"device reports a codec v2 configuration this host refuses "
                              f"({error}); update the host") from None


def _encode_lfp(lfp: DecimatorConfig | None) -> bytes:
    return _LFP.pack(0, 0, 0) if lfp is None else _LFP.pack(1, lfp.factor, lfp.order)


def _decode_lfp(payload: bytes, offset: int) -> DecimatorConfig | None:
    built, factor, order = _LFP.unpack_from(payload, offset)
    return DecimatorConfig(factor=factor, order=order) if built else None


def _encode_codec(codec: CodecConfig) -> bytes:
    return _CODEC.pack(int(codec.enabled), codec.block_sweeps, codec.predictor_code,
                       codec.rice_shift, codec.select_shift, codec.initial_k,
                       codec.escape_threshold, int(codec.codebook), codec.codebook_bits)


def _decode_codec(payload: bytes, offset: int) -> CodecConfig:
    (enabled, block_sweeps, predictor, rice_shift, select_shift, initial_k, escape,
     codebook, codebook_bits) = _CODEC.unpack_from(payload, offset)
    if predictor > 4:
        raise WireFormatError(f"device reports unknown codec predictor code {predictor}")
    return CodecConfig.from_predictor_code(
        predictor, enabled=bool(enabled), block_sweeps=block_sweeps, rice_shift=rice_shift,
        select_shift=select_shift, initial_k=initial_k, escape_threshold=escape,
        codebook=bool(codebook), codebook_bits=codebook_bits)


def decode_identity(payload: bytes) -> SystemConfig:
    """The configuration an IDENTITY payload describes."""
    if len(payload) > 4 and payload[:4] == IDENTITY_MAGIC \
            and not _OLDEST_VERSION <= payload[4] <= WIRE_VERSION:
        raise WireFormatError(
            f"device speaks wire format version {payload[4]}, this host speaks {WIRE_VERSION} "
            f"(and {_OLDEST_VERSION} up); update spikeforge on the host or rebuild the "
            "bitstream from the same version"
        )
    if len(payload) < _IDENTITY.size:
        raise WireFormatError(
            f"identity payload must be at least {IDENTITY_PAYLOAD_BYTES} bytes, not "
            f"{len(payload)}")
    (magic, _version, source, noise_shift, link, channels, rate, clock, baud, spf,
     buffer_samples, interval, seed, spike_mhz) = _IDENTITY.unpack(payload[:_IDENTITY.size])
    version = payload[4]
    if len(payload) != identity_payload_bytes(channels, version):
        raise WireFormatError(
            f"identity payload of a {channels}-channel device must be "
            f"{identity_payload_bytes(channels, version)} bytes in version {version}, not "
            f"{len(payload)}"
        )
    fixed = IDENTITY_PAYLOAD_BYTES if version > _OLDEST_VERSION else _V5_PAYLOAD_BYTES
    if magic != IDENTITY_MAGIC:
        raise WireFormatError(f"identity magic must be {IDENTITY_MAGIC!r}, not {magic!r}")
    rhd_end = _IDENTITY.size + _RHD.size
    (dc_shift, polarity, align, pre, post, max_pre, max_post, k16, noise_step, noise_init,
     dead, queue, buffer_words, highpass, lowpass, neo, neo_shift,
     enabled) = _DETECTOR.unpack_from(payload, rhd_end)
    if polarity not in _POLARITY_NAMES:
        raise WireFormatError(f"device reports unknown detector polarity code {polarity}")
    if source >= len(SOURCES):
        raise WireFormatError(f"device reports unknown source index {source}; update the host")
    if link >= len(LINKS):
        raise WireFormatError(f"device reports unknown link index {link}; update the host")
    return SystemConfig(
        channels=channels, sample_rate_hz=rate, clock_hz=clock, baud=baud,
        sweeps_per_frame=spf, link_buffer_samples=buffer_samples,
        identity_interval_frames=interval, source=SOURCES[source],
        test_source=TestSourceConfig(seed=seed, noise_shift=noise_shift,
                                     spike_rate_hz=spike_mhz / 1000),
        rhd=_decode_rhd(payload[_IDENTITY.size:rhd_end]),
        detector=DetectorConfig(
            dc_shift=dc_shift, highpass_hz=highpass, lowpass_hz=lowpass, noise_step=noise_step,
            noise_init_lsb=noise_init, threshold_k=k16 / 16, polarity=_POLARITY_NAMES[polarity],
            align_samples=align, dead_samples=dead, snippet_pre=pre, snippet_post=post,
            max_snippet_pre=max_pre, max_snippet_post=max_post, event_queue=queue,
            event_buffer_words=buffer_words, neo=bool(neo), neo_shift=neo_shift,
            enabled=bool(enabled)),
        codec=_decode_codec(payload, rhd_end + _DETECTOR.size),
        lfp=_decode_lfp(payload, rhd_end + _DETECTOR.size + _CODEC.size),
        codec_v2=(_decode_codec_v2(payload, _V5_PAYLOAD_BYTES) if version > _OLDEST_VERSION
                  else CodecV2Config()),
        channel_mask=_decode_mask(payload[fixed:], channels),
        # The board's Ethernet addresses are not carried (the host reaches the board at
        # them; the ETH_* registers report them): the decoded config has the defaults.
        link=LINKS[link],
    )


