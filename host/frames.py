"""From link bytes to frames, and from frames to samples.

Two layers, one job each:

* :class:`FrameParser` finds frames in a byte stream split at arbitrary points and checks
  their CRC. It knows the frame layout of :mod:`spikeforge.firmware.wire`, not what payloads
  mean.
* :class:`StreamDecoder` wraps a parser, learns the device configuration from identity
  frames, turns frames into typed items (:class:`Identity`, :class:`DataBlock`) and keeps
  the loss counters of the link in :class:`LinkStats`.

Both only take bytes and never touch a port, so the same code decodes a live link, a
recorded byte dump, or the virtual board.
"""

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from spikeforge.firmware.compression import Codebook
from spikeforge.firmware.compression_v2 import ValueGrid
from spikeforge.firmware.config import MAX_PAYLOAD_BYTES, SystemConfig
from spikeforge.firmware.errors import ConfigError, WireFormatError
from spikeforge.firmware.stream_cipher import is_sealed, plain_type
from spikeforge.firmware.wire import (
    CRC_BYTES,
    EVENT_RECORD,
    HEADER,
    HEADER_BYTES,
    SYNC,
    FrameType,
    Reply,
    crc32,
    decode_identity,
    decode_reply,
)

if TYPE_CHECKING:
    from .cipher import FrameOpener
    from .compression_v2_stream import V2Chunk, V2SegmentDecoder

__all__ = [
    "Frame", "DataBlock", "Identity", "LinkStats", "FrameParser", "StreamDecoder", "StreamItem",
    "DetectorEvent", "EventBlock", "Reply", "decided_at_sweep",
]

_KNOWN_TYPES = {int(frame_type): frame_type for frame_type in FrameType}
_SEQ_MODULUS = 2**32
#: A DATA frame at most this many frames behind the last one is late (reordered on the way),
#: not a device that restarted (whose seq starts again from 0 and is announced by an
#: IDENTITY frame).
LATE_WINDOW_FRAMES = 64


def decided_at_sweep(config: SystemConfig, frame_type: int, seq: int) -> int:
    """The device sweep (modulo 2**32, as register ``SWEEPS`` counts) during which the
    device decided to send or skip slot ``seq`` of ``frame_type`` (DATA, COMPRESSED, LFP):
    the slot's first sweep; for LFP, source sweep ``(d+1)*R - 1`` after which its first
    decimated sweep ``d = seq * sweeps_per_frame`` comes out of the decimator."""
    if frame_type == FrameType.COMPRESSED:
        sweeps = config.codec_v2.block_sweeps if config.codec_v2.enabled \
            else config.codec.block_sweeps
        return seq * sweeps % _SEQ_MODULUS
    if frame_type == FrameType.LFP and config.lfp is not None:
        factor = config.lfp.factor
        return ((seq * config.sweeps_per_frame + 1) * factor - 1) % _SEQ_MODULUS
    return seq * config.sweeps_per_frame % _SEQ_MODULUS


@dataclass(frozen=True)
class Frame:
    """One frame whose CRC checked.

    ``type`` is a :class:`FrameType` when this host knows the number, else the plain ``int``
    (a newer device may send types this host does not know yet).
    """

    type: FrameType | int
    seq: int
    payload: bytes


@dataclass(frozen=True, eq=False)
class DataBlock:
    """The samples of one DATA frame (or of a COMPRESSED or LFP frame).

    ``samples`` has shape ``(sweeps_per_frame, len(channels))``, dtype int16, and is
    read-only. ``channels`` are the device's channel numbers of its columns, ascending: the
    channels enabled by the channel mask (every channel, ``0 .. n-1``, when not given).
    ``first_sample`` is the sample number of its first sweep, ``seq * sweeps_per_frame``;
    like ``seq`` it wraps after 2**32 frames (about 145 years at 30 kS/s, 32 sweeps/frame).
    """

    seq: int
    first_sample: int
    samples: np.ndarray
    channels: tuple[int, ...] = ()
    #: From a COMPRESSED frame: the coder carries every channel, whatever the channel mask.
    compressed: bool = False
    #: Which stream the block belongs to: ``"data"`` (DATA and COMPRESSED frames, at
    #: ``sample_rate_hz``) or ``"lfp"`` (LFP frames: decimated sweeps at
    #: ``SystemConfig.lfp_rate_hz``; ``first_sample`` counts decimated sweeps).
    stream: str = "data"

    def __post_init__(self) -> None:
        if not self.channels:
            object.__setattr__(self, "channels", tuple(range(self.samples.shape[1])))
        elif len(self.channels) != self.samples.shape[1]:
            raise WireFormatError(
                f"a data block of {self.samples.shape[1]} columns cannot carry channels "
                f"{self.channels}")

    @classmethod
    def from_frame(cls, frame: Frame, config: SystemConfig,
                   channels: tuple[int, ...] | None = None) -> "DataBlock":
        """Decode a DATA frame carrying ``channels`` (the channel mask in force; the
        configuration's reset mask if not given); raises :class:`WireFormatError` if its
        size does not fit."""
        channels = config.enabled_channels if channels is None else tuple(channels)
        expected = 2 * config.sweeps_per_frame * len(channels)
        if len(frame.payload) != expected:
            raise WireFormatError(
                f"data frame seq {frame.seq} must carry {expected} bytes "
                f"({config.sweeps_per_frame} sweeps x {len(channels)} channels x 2), not "
                f"{len(frame.payload)}; the device and the configuration disagree "
                "(is the identity frame from the same bitstream? was the channel mask "
                "changed without Device.configure?)"
            )
        samples = np.frombuffer(frame.payload, dtype="<i2").reshape(
            config.sweeps_per_frame, len(channels)
        )
        return cls(frame.seq, frame.seq * config.sweeps_per_frame, samples, channels)

    @classmethod
    def from_lfp_frame(cls, frame: Frame, config: SystemConfig,
                       channels: tuple[int, ...] | None = None) -> "DataBlock":
        """Decode an LFP frame (mode events+lfp): laid out like a DATA frame, its samples
        decimated sweeps; ``first_sample = seq * sweeps_per_frame`` in the decimated clock."""
        if config.lfp is None:
            raise WireFormatError(
                f"LFP frame seq {frame.seq}, but the device's configuration has no LFP "
                "decimator; the device and the configuration disagree")
        block = cls.from_frame(frame, config, channels)
        return cls(block.seq, block.first_sample, block.samples, block.channels, stream="lfp")

    @classmethod
    def from_compressed_frame(cls, frame: Frame, config: SystemConfig,
                              codebook: Codebook | None = None) -> "DataBlock":
        """Decode a COMPRESSED frame: one coded block of ``config.codec.block_sweeps`` sweeps
        (``docs/compression.md``), ``seq`` numbering blocks. Raises
        :class:`WireFormatError` if it does not decode to exactly one block."""
        from .compression import decode_block

        if not config.codec.enabled:
            raise WireFormatError(
                f"compressed frame seq {frame.seq}, but the device's configuration has no "
                "codec; the device and the configuration disagree")
        sweeps = config.codec.block_sweeps
        samples = decode_block(frame.payload, config.channels, config.codec, codebook)
        samples.flags.writeable = False
        return cls(frame.seq, frame.seq * sweeps, samples, compressed=True)


@dataclass(frozen=True)
class Identity:
    """An IDENTITY frame: the configuration the device reports."""

    seq: int
    config: SystemConfig

    @classmethod
    def from_frame(cls, frame: Frame) -> "Identity":
        """Decode an IDENTITY frame; raises :class:`WireFormatError` or :class:`ConfigError`."""
        return cls(frame.seq, decode_identity(frame.payload))


@dataclass(frozen=True, eq=False)
class DetectorEvent:
    """One spike the device detected.

    ``sample`` is the sample number of the peak (the device's sweep count, wrapping at
    2**32), ``peak`` the conditioned value at the peak, ``snippet`` the conditioned samples
    ``sample - pre .. sample + post`` (int16, read-only).
    """

    sample: int
    channel: int
    peak: int
    pre: int
    snippet: np.ndarray

    @property
    def post(self) -> int:
        return len(self.snippet) - self.pre - 1


@dataclass(frozen=True)
class EventBlock:
    """The events of one EVENTS frame, in the order the device detected them."""

    seq: int
    events: tuple[DetectorEvent, ...]

    @classmethod
    def from_frame(cls, frame: Frame, config: SystemConfig | None = None) -> "EventBlock":
        """Decode an EVENTS frame; raises :class:`WireFormatError` if it is not whole
        records (or names a channel the configuration does not have)."""
        payload = frame.payload
        events = []
        at = 0
        while at < len(payload):
            if len(payload) - at < EVENT_RECORD.size:
                raise WireFormatError(
                    f"events frame seq {frame.seq} ends inside an event record at byte {at}")
            pre, post, sample, channel, peak = EVENT_RECORD.unpack_from(payload, at)
            at += EVENT_RECORD.size
            count = pre + 1 + post
            if len(payload) - at < 2 * count:
                raise WireFormatError(
                    f"events frame seq {frame.seq} ends inside a snippet of {count} samples")
            if config is not None and channel >= config.channels:
                raise WireFormatError(
                    f"events frame seq {frame.seq} names channel {channel}, but the device "
                    f"has {config.channels}")
            snippet = np.frombuffer(payload, dtype="<i2", count=count, offset=at)
            at += 2 * count
            events.append(DetectorEvent(sample, channel, peak, pre, snippet))
        return cls(frame.seq, tuple(events))


#: What :meth:`StreamDecoder.feed` yields: typed items, and plain frames of other types.
StreamItem = Identity | DataBlock | EventBlock | Reply | Frame


@dataclass
class LinkStats:
    """Counters of one link, since the parser was made. They only ever grow.

    Every received byte ends up in exactly one place, so at any time
    ``bytes_received == bytes_discarded + (bytes of frames_ok frames) + bytes still buffered``
    (after :meth:`FrameParser.flush`, nothing is buffered).

    Attributes
    ----------
    bytes_received:
        Bytes passed to ``feed``.
    bytes_discarded:
        Bytes the parser moved past without them being part of a good frame: garbage before
        a sync, the sync byte of a rejected frame or false sync, a trailing partial frame at
        :meth:`FrameParser.flush`. Counted when the parser moves past them, not on arrival.
    frames_ok:
        Frames whose CRC checked, of any type and whatever their payload (so also those
        counted in ``frames_unknown_type`` and ``malformed``).
    crc_errors:
        Candidate frames (a sync, a length within ``max_payload_bytes``, all bytes present)
        whose CRC failed. A corrupted frame counts once; a false sync inside corrupted data
        can count too, so this is an upper bound on corrupted frames, not an exact count.
        False syncs rejected for their length are not counted here.
    frames_unknown_type:
        Good frames with a type number this host does not know (yielded as :class:`Frame`).
    sequence_gaps:
        DATA frames lost: the seq numbers skipped between consecutive good DATA frames
        (modulo 2**32). Malformed DATA frames take part, since they did arrive.
    malformed:
        Good frames whose payload cannot be decoded: a DATA frame whose size does not match
        the configuration, an IDENTITY frame that does not decode, an EVENTS frame that is
        not whole event records. They yield nothing.
    pending_dropped:
        DATA frames dropped because no configuration was known and ``max_pending_frames``
        were already waiting for one.
    late_frames:
        DATA frames that arrived after a later one of the same stream (a network that
        reorders datagrams): up to :data:`LATE_WINDOW_FRAMES` behind. They yield nothing:
        their sweeps were already counted in ``sequence_gaps`` and marked lost downstream.
    duplicate_frames:
        DATA frames whose seq equals the previous one's (a duplicated datagram); dropped.
    paused_slots:
        Seq numbers skipped across a pause this host made (``Device.stop`` then
        ``Device.start``, e.g. to write the channel mask; :meth:`StreamDecoder.stream_restarted`):
        slots the device skipped on purpose while its stream was stopped, not in
        ``sequence_gaps``. Seq numbers cannot tell a frame the device dropped in its very last
        slots before the stop from a skipped slot, so such a frame counts here (the device's
        ``FRAMES_DROPPED`` counts it); frames lost after the restart are gaps as usual.
    """

    bytes_received: int = 0
    bytes_discarded: int = 0
    frames_ok: int = 0
    crc_errors: int = 0
    frames_unknown_type: int = 0
    sequence_gaps: int = 0
    malformed: int = 0
    pending_dropped: int = 0
    late_frames: int = 0
    duplicate_frames: int = 0
    paused_slots: int = 0
    #: Encrypted stream (``opener``): frames not delivered because their tag was wrong or
    #: missing, or because they were sealed and no key was given
    #: (:class:`~spikeforge.host.cipher.FrameOpener` keeps which and where).
    cipher_failures: int = 0


class FrameParser:
    """Incremental frame parser: bytes in, CRC-checked :class:`Frame` objects out.

    The stream may be split at any point; feeding it a byte at a time gives the same frames
    and counters as feeding it at once.

    The parser looks for SYNC, reads the header and waits until the whole frame is there.
    A frame whose CRC fails is rejected and the search resumes at the byte after its sync,
    so a good frame that starts inside a corrupted or truncated one is still found. A length
    above ``max_payload_bytes`` marks a false sync; the search resumes at once at the next
    byte. A false sync with a plausible length holds back the frames behind it until that
    many bytes have arrived (at most ``max_payload_bytes`` + 13); a smaller
    ``max_payload_bytes`` bounds that latency.

    Parameters
    ----------
    max_payload_bytes:
        Largest payload accepted, 0..65535.
    stats:
        Counters to update (shared with a :class:`StreamDecoder`); a new :class:`LinkStats`
        if not given. The parser counts bytes, ``frames_ok``, ``crc_errors`` and
        ``frames_unknown_type``.
    """

    def __init__(self, max_payload_bytes: int = MAX_PAYLOAD_BYTES,
                 stats: LinkStats | None = None) -> None:
        if not 0 <= max_payload_bytes <= MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"max_payload_bytes must be 0..{MAX_PAYLOAD_BYTES} (the 16-bit length field), "
                f"not {max_payload_bytes!r}"
            )
        self.max_payload_bytes = max_payload_bytes
        self.stats = LinkStats() if stats is None else stats
        self._buffer = bytearray()

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet accepted or discarded (a partial frame, mostly)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Take the next bytes of the stream; return the frames they complete, in order."""
        self.stats.bytes_received += len(data)
        self._buffer += data
        return self._scan(at_end=False)

    def flush(self) -> list[Frame]:
        """The stream has ended: resolve what is buffered.

        A partial frame can no longer complete, so its sync is treated as false and the
        rest is searched for complete frames (one may hide behind a false sync whose length
        reaches past the end). Afterwards nothing is buffered; feeding may go on.
        """
        return self._scan(at_end=True)

    def _scan(self, at_end: bool) -> list[Frame]:
        stats = self.stats
        buffer = self._buffer
        frames = []
        start = 0  # everything before start is consumed (accepted or discarded)
        with memoryview(buffer) as view:
            while True:
                sync_at = buffer.find(SYNC, start)
                if sync_at < 0:
                    # A trailing first sync byte may pair with the next chunk's first byte.
                    keep = 0 if at_end or not buffer.endswith(SYNC[:1]) else 1
                    end = max(start, len(buffer) - keep)
                    stats.bytes_discarded += end - start
                    start = end
                    break
                stats.bytes_discarded += sync_at - start
                start = sync_at
                if len(buffer) - start < HEADER_BYTES:
                    if at_end:
                        stats.bytes_discarded += 1
                        start += 1
                        continue
                    break
                frame_type, seq, length = HEADER.unpack_from(buffer, start + len(SYNC))
                if length > self.max_payload_bytes:
                    stats.bytes_discarded += 1
                    start += 1
                    continue
                crc_at = start + HEADER_BYTES + length
                end = crc_at + CRC_BYTES
                if end > len(buffer):
                    if at_end:
                        stats.bytes_discarded += 1
                        start += 1
                        continue
                    break
                if crc32(view[start + len(SYNC):crc_at]) != int.from_bytes(
                        view[crc_at:end], "little"):
                    stats.crc_errors += 1
                    stats.bytes_discarded += 1
                    start += 1
                    continue
                known_type = _KNOWN_TYPES.get(frame_type)
                if known_type is None and not (is_sealed(frame_type)
                                               and plain_type(frame_type) in _KNOWN_TYPES):
                    stats.frames_unknown_type += 1
                stats.frames_ok += 1
                frames.append(Frame(
                    frame_type if known_type is None else known_type,
                    seq,
                    bytes(view[start + HEADER_BYTES:crc_at]),
                ))
                start = end
        del buffer[:start]
        return frames


class StreamDecoder:
    """Link bytes in, :class:`Identity`, :class:`DataBlock`, :class:`EventBlock` and other
    :class:`Frame` out.

    The configuration comes from IDENTITY frames, or from ``config`` until the first one
    arrives. With neither, DATA frames wait (up to ``max_pending_frames``, oldest dropped
    first and counted in ``pending_dropped``) and are decoded, in order, right after the
    first identity frame is yielded.

    Every good identity frame is yielded. When one reports a configuration different from
    the current one, the new configuration applies to the DATA frames that follow and
    sequence tracking restarts (the device numbers frames afresh after a rebuild or reset),
    so no gap is counted across the change.

    Sequence tracking: a DATA seq that is ``n`` ahead of the previous one (modulo 2**32, so
    2**32 - 1 followed by 0 is no gap) adds ``n - 1`` to ``sequence_gaps``. A seq equal to
    the previous one is a duplicate, and one at most :data:`LATE_WINDOW_FRAMES` behind it a
    late frame (both happen on networks): counted in ``duplicate_frames`` / ``late_frames``
    and dropped, so sample numbers never go back. A seq further behind means the device
    restarted; tracking restarts there without counting a gap. A pause the host made
    (:meth:`stream_restarted`) is no gap either: the jump across it goes to ``paused_slots``.

    Frames of other types (known or not) are yielded as plain :class:`Frame` objects. A frame
    that has a good CRC but does not decode is counted in ``malformed``, yields nothing, and
    its reason is kept in :attr:`last_error`.

    Parameters
    ----------
    config:
        Configuration to decode DATA frames with until an identity frame says otherwise.
    max_payload_bytes:
        Passed to the :class:`FrameParser`.
    max_pending_frames:
        DATA frames kept while waiting for the first configuration.
    codebook:
        The value map the device's coder was loaded with (:class:`Codebook`), needed to
        decode COMPRESSED frames of a codec built with ``codebook=True``.
    grid:
        The value grid the device's v2 coder was loaded with (:class:`ValueGrid`), needed
        to decode COMPRESSED frames of a ``codec_v2`` built with ``grid=True``.
    prior:
        The restart prior the device's v2 coder was loaded with and restarts from
        (``codec_v2.restart_prior`` builds, PRIOR_ON set: ``Device.load_prior``); None: the
        built-in initial tables. Setting it also sets the running v2 segment decoder's.
    weights:
        The code weights the device's v2 coder was loaded with (``codec_v2.code_weights``
        builds, WEIGHTS_ON set: ``Device.load_code_weights``); None: WEIGHTS_ON clear, the
        blocks are coded as without code weights. Setting it also sets the running v2
        segment decoder's.

    opener:
        The encrypted stream (:class:`~spikeforge.host.cipher.FrameOpener`): every frame
        passes through it first, sealed frames are checked and decrypted, and a frame whose
        tag is wrong or missing is counted in ``cipher_failures`` and never delivered.
        Without one, sealed frames are counted there too (no key), never decoded.

    Channel mask: DATA frames carry the channels in :attr:`enabled_channels`, the reset mask
    of the identity's configuration until :meth:`set_enabled_channels` says otherwise (the
    host does after it changed the mask on the device: ``Device.configure``); a new
    configuration in an identity frame resets it. :class:`DataBlock.channels` names them.

    COMPRESSED frames (one coded block each, ``docs/compression.md``) become the same
    :class:`DataBlock` as DATA frames (every channel: the coder sees them all, whatever the
    channel mask), ``first_sample = seq * codec.block_sweeps``. Their seq counts blocks,
    DATA's counts slots, so gaps are counted within a run of one type only: a
    bandwidth-mode switch (raw <-> lossless) restarts tracking without counting the stretch
    the other mode carried. A block that does not decode is ``malformed``.

    With ``codec_v2`` (the v2 coder: state carried from block to block, reset at sync
    blocks) COMPRESSED frames go through a :class:`~spikeforge.host.compression_v2_stream.
    V2SegmentDecoder` (:attr:`v2`): a sync segment decodes whole once its last (flushed)
    block is in, into one :class:`DataBlock` whose ``seq`` is the segment's first block and
    whose samples span the segment; a segment with a missing block yields nothing and its
    sweeps count in ``v2.lost_sweeps``; the segment still open at :meth:`flush` in
    ``v2.undecoded_sweeps`` (its last block is not flushed: it cannot be proved decodable).

    LFP frames (mode events+lfp) become :class:`DataBlock` with ``stream == "lfp"``: the
    enabled channels, like DATA, ``first_sample = seq * sweeps_per_frame`` decimated sweeps.
    Their seq counts LFP slots; gaps are tracked within a run of LFP frames as above.
    """

    def __init__(self, config: SystemConfig | None = None, *,
                 max_payload_bytes: int = MAX_PAYLOAD_BYTES,
                 max_pending_frames: int = 4096,
                 codebook: Codebook | None = None,
                 opener: "FrameOpener | None" = None,
                 grid: ValueGrid | None = None,
                 prior: np.ndarray | None = None,
                 weights: np.ndarray | None = None) -> None:
        self.stats = LinkStats()
        self.opener = opener
        self.codebook = codebook
        self.grid = grid
        #: The v2 segment decoder of the current configuration (None: no v2 frame yet).
        self.v2: V2SegmentDecoder | None = None
        self._prior = prior
        self._weights = weights
        self.parser = FrameParser(max_payload_bytes, stats=self.stats)
        self.config = config
        self.last_error: WireFormatError | ConfigError | None = None
        self._pending: deque[Frame] = deque(maxlen=max_pending_frames)
        #: Last seq per frame type (DATA slots and COMPRESSED blocks count separately).
        self._last_seq: dict[int, int] = {}
        self._enabled_channels: tuple[int, ...] | None = None
        #: The device sweep at which the host restarted a stream it had stopped (None: no
        #: pause pending): the seq jump onto the first frame at or after it is the pause.
        self._restarted_at: int | None = None

    @property
    def prior(self) -> np.ndarray | None:
        """The restart prior v2 COMPRESSED frames are decoded with (None: the initial
        tables)."""
        return self._prior

    @prior.setter
    def prior(self, rows: np.ndarray | None) -> None:
        # The host loads a prior outside lossless: a segment still open was cut by the
        # switch and never decodes, every later one restarts from the new prior.
        self._prior = rows
        if self.v2 is not None and self.config is not None \
                and self.config.codec_v2.restart_prior:
            self.v2.prior = rows

    @property
    def weights(self) -> np.ndarray | None:
        """The code weights v2 COMPRESSED frames are decoded with (None: unweighted)."""
        return self._weights

    @weights.setter
    def weights(self, table: np.ndarray | None) -> None:
        # Loaded outside lossless, as the prior: every later segment is coded with them.
        self._weights = table
        if self.v2 is not None and self.config is not None \
                and self.config.codec_v2.code_weights:
            self.v2.weights = table

    # -- deliberate pauses --
    def stream_restarted(self, at_sweep: int) -> None:
        """The host restarts the stream it had stopped: ``at_sweep`` is the device's sweep
        counter (register ``SWEEPS``) read while the stream was stopped, before the start.

        Every slot decided before the stop starts before ``at_sweep``, every slot after the
        start at or after it, whatever order their frames arrive in (frames buffered before
        the stop still arrive after it). So the seq jump from the last frame starting before
        ``at_sweep`` to the first one starting at or after it is the pause: counted in
        ``paused_slots``, not ``sequence_gaps``. Gaps on either side count as before."""
        self._restarted_at = at_sweep % _SEQ_MODULUS

    def slot_sweep(self, frame_type: int, seq: int) -> int:
        """The device sweep (modulo 2**32, as ``SWEEPS``) during which the device decided
        to send or skip slot ``seq`` of a DATA, COMPRESSED or LFP frame: the slot's first
        sweep; for LFP, the source sweep after which its first decimated sweep comes out."""
        assert self.config is not None
        return decided_at_sweep(self.config, frame_type, seq)

    def _after_restart(self, frame_type: int, seq: int) -> bool:
        assert self._restarted_at is not None
        return (self.slot_sweep(frame_type, seq) - self._restarted_at) % _SEQ_MODULUS \
            < _SEQ_MODULUS // 2

    # -- channel mask --
    @property
    def enabled_channels(self) -> tuple[int, ...] | None:
        """The channels DATA frames carry (None while no configuration is known)."""
        if self._enabled_channels is not None:
            return self._enabled_channels
        return None if self.config is None else self.config.enabled_channels

    def set_enabled_channels(self, channels: "tuple[int, ...] | list[int] | None") -> None:
        """DATA frames from now on carry ``channels`` (None: the configuration's reset
        mask). Call it when no DATA frame of the old mask can still arrive."""
        self._enabled_channels = None if channels is None else tuple(sorted(set(channels)))

    @property
    def pending_frames(self) -> int:
        """DATA frames waiting for a configuration."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[StreamItem]:
        """Take the next bytes of the stream; return the items they complete, in order."""
        return self._decode(self.parser.feed(data))

    def flush(self) -> list[StreamItem]:
        """The stream has ended: decode what the parser still holds (see
        :meth:`FrameParser.flush`)."""
        items = self._decode(self.parser.flush())
        if self.v2 is not None:
            self._v2_items(self.v2.finish(), items)
        return items

    def _decode(self, frames: list[Frame]) -> list[StreamItem]:
        items: list[StreamItem] = []
        for sent in frames:
            frame = self._open(sent)
            if frame is None:
                continue
            if frame.type in (FrameType.DATA, FrameType.COMPRESSED, FrameType.LFP):
                if self.config is None:
                    if len(self._pending) == self._pending.maxlen:
                        self.stats.pending_dropped += 1
                    self._pending.append(frame)
                else:
                    self._decode_data(frame, items)
            elif frame.type == FrameType.IDENTITY:
                self._decode_identity(frame, items)
            elif frame.type == FrameType.EVENTS:
                try:
                    items.append(EventBlock.from_frame(frame, self.config))
                except WireFormatError as error:
                    self._reject(error)
            elif frame.type == FrameType.REPLY:
                try:
                    items.append(decode_reply(frame.seq, frame.payload))
                except WireFormatError as error:
                    self._reject(error)
            else:
                items.append(frame)
        return items

    def _open(self, frame: Frame) -> Frame | None:
        """The frame as the device's framer made it (decrypted), or None: not delivered."""
        if self.opener is None:
            if not is_sealed(frame.type):
                return frame
            from .cipher import no_key_failure

            failure = no_key_failure(frame.type, frame.seq)
        else:
            opened = self.opener.open(int(frame.type), frame.seq, frame.payload)
            if opened is not None:
                frame_type, payload = opened
                return Frame(_KNOWN_TYPES.get(frame_type, frame_type), frame.seq, payload)
            failure = self.opener.failures[-1]
        self.stats.cipher_failures += 1
        self.last_error = WireFormatError(failure.message)
        return None

    def _decode_identity(self, frame: Frame, items: list[StreamItem]) -> None:
        try:
            identity = Identity.from_frame(frame)
        except (WireFormatError, ConfigError) as error:
            self._reject(error)
            return
        if identity.config != self.config:
            self.config = identity.config
            self._last_seq.clear()
            self._enabled_channels = None  # channel mask: a new device starts at its reset mask
            self._restarted_at = None      # a pause of the old device's stream
            if self.v2 is not None:        # the old device's open segment stays undecoded
                self.v2.finish()
            self.v2 = None
        items.append(identity)
        while self._pending:
            self._decode_data(self._pending.popleft(), items)

    def _decode_data(self, frame: Frame, items: list[StreamItem]) -> None:
        assert self.config is not None
        if self._out_of_order(frame.type, frame.seq):
            return
        self._track_seq(frame.type, frame.seq)
        try:
            if frame.type == FrameType.COMPRESSED and self.config.codec_v2.enabled:
                self._decode_v2(frame, items)
            elif frame.type == FrameType.COMPRESSED:
                items.append(DataBlock.from_compressed_frame(frame, self.config,
                                                             self.codebook))
            elif frame.type == FrameType.LFP:
                items.append(DataBlock.from_lfp_frame(frame, self.config,
                                                      self.enabled_channels))
            else:
                items.append(DataBlock.from_frame(frame, self.config, self.enabled_channels))
        except WireFormatError as error:
            self._reject(error)

    def _decode_v2(self, frame: Frame, items: list[StreamItem]) -> None:
        assert self.config is not None
        if self.v2 is None:
            from .compression_v2_stream import V2SegmentDecoder

            try:
                codec_v2 = self.config.codec_v2
                self.v2 = V2SegmentDecoder(
                    self.config.channels, codec_v2, self.grid if codec_v2.grid else None,
                    weights=self.weights if codec_v2.code_weights else None,
                    prior=self.prior if codec_v2.restart_prior else None)
            except ConfigError as error:
                self._reject(WireFormatError(
                    f"compressed frame seq {frame.seq} of a v2 coder that this decoder cannot "
                    f"follow ({error}); pass StreamDecoder(grid=..., weights=..., prior=...) "
                    "as the device was loaded"))
                return
        damaged = len(self.v2.errors)
        self._v2_items(self.v2.push(frame.seq, frame.payload), items)
        if len(self.v2.errors) > damaged:
            self._reject(WireFormatError(self.v2.errors[-1]))

    def _v2_items(self, chunks: "list[V2Chunk]", items: list[StreamItem]) -> None:
        assert self.v2 is not None
        for chunk in chunks:
            chunk.samples.flags.writeable = False
            items.append(DataBlock(chunk.first_sweep // self.v2.config.block_sweeps,
                                   chunk.first_sweep, chunk.samples, compressed=True))

    def _out_of_order(self, frame_type: int, seq: int) -> bool:
        """A duplicate or late frame of the current stretch: counted, to be dropped."""
        last = self._last_seq.get(frame_type)
        if last is None:
            return False
        behind = (last - seq) % _SEQ_MODULUS
        if behind == 0:
            self.stats.duplicate_frames += 1
            return True
        if behind <= LATE_WINDOW_FRAMES:
            self.stats.late_frames += 1
            return True
        return False

    def _track_seq(self, frame_type: int, seq: int) -> None:
        if self._last_seq and frame_type not in self._last_seq:
            self._last_seq.clear()   # a bandwidth-mode switch: the other type's stretch
        last = self._last_seq.get(frame_type)
        paused = False
        if self._restarted_at is not None and self._after_restart(frame_type, seq):
            # The first frame after the host's restart: the jump onto it is the pause.
            paused = last is not None and not self._after_restart(frame_type, last)
            self._restarted_at = None
        if last is not None:
            step = (seq - last) % _SEQ_MODULUS
            if 0 < step < _SEQ_MODULUS // 2:
                if paused:
                    self.stats.paused_slots += step - 1
                else:
                    self.stats.sequence_gaps += step - 1
        self._last_seq = {frame_type: seq}

    def _reject(self, error: WireFormatError | ConfigError) -> None:
        self.stats.malformed += 1
        self.last_error = error
