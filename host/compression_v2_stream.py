"""COMPRESSED frames of a v2 build -> samples, one sync segment at a time.

The v2 coder (:mod:`spikeforge.firmware.compression_v2`) carries its state from block to
block and resets it at every sync block (block ``b`` with ``b % sync_blocks == 0``); the
block before a sync block ends with the range coder's flush. So a run of blocks decodes
only whole, from a sync block through the flushed block before the next one: a **segment**.
Each COMPRESSED frame carries one block (``seq`` = block number since reset, its first sweep
``seq * block_sweeps``; the payload is the block's words as ``cut_words`` defines, possibly
empty). The framer admits blocks from a sync block on and drops the rest of a segment once
one block of it is lost, so the host sees runs of consecutive seqs from sync blocks.

:class:`V2SegmentDecoder` takes the frames in arrival order and decodes a segment as soon as
its last (flushed) block is in. A segment with a missing block is discarded whole and its
sweeps are counted as lost, never papered over. A segment still open when the stream stops
cannot be proved decodable (its last block is not flushed: the range decoder needs bytes
the coder has not sent yet), so :meth:`V2SegmentDecoder.finish` counts its sweeps as
undecoded, unless the caller knows the stream's last block was flushed.
"""

from dataclasses import dataclass, field

import numpy as np

from spikeforge.firmware.compression_v2 import (
    CodecV2Config,
    ValueGrid,
    coded_config,
    padded_code_weights,
    restart_tables,
)
from spikeforge.firmware.errors import ConfigError

from .compression import CompressedBlockError, decode_v2

__all__ = ["V2Chunk", "V2SegmentDecoder"]


@dataclass(frozen=True)
class V2Chunk:
    """The samples of one decoded segment: ``(sweeps, channels)`` int16 from sweep
    ``first_sweep`` (counted since the device's reset, ``seq * block_sweeps``)."""

    first_sweep: int
    samples: np.ndarray


@dataclass
class V2SegmentDecoder:
    """Groups v2 COMPRESSED frames into sync segments and decodes each one whole.

    ``push(seq, payload)`` for every COMPRESSED frame in arrival order returns the chunks
    it completed; ``finish()`` at the end of the stream. Counters (sweeps):
    ``decoded_sweeps``; ``lost_sweeps`` (blocks that never came, and the received blocks
    of a segment one of whose blocks is missing, or of a segment joined after its sync
    block); ``undecoded_sweeps`` (the segment still open at :meth:`finish`, not flushed);
    ``damaged_sweeps`` (a complete segment that did not decode: a grid, code weights, restart
    prior or configuration that is not the device's; ``errors`` says why); ``gaps``: breaks in the
    seqs (a frame whose seq is not the one after the last frame's). A seq below the ones
    seen is taken as the device's restart.

    ``prior``: the restart prior the device's coder (re)starts its context tables from
    (``codec_v2.restart_prior`` builds with PRIOR_ON set, ``Device.load_prior``); None: the
    built-in initial tables.

    ``weights``: the code weights the device's coder was loaded with (``codec_v2.code_weights``
    builds with WEIGHTS_ON set, ``Device.load_code_weights``); None: WEIGHTS_ON clear, the
    coder codes exactly as a build without code weights, and the segments are decoded so.
    """

    channels: int
    config: CodecV2Config
    grid: ValueGrid | None = None
    weights: np.ndarray | None = None
    prior: np.ndarray | None = None
    decoded_sweeps: int = 0
    lost_sweeps: int = 0
    undecoded_sweeps: int = 0
    damaged_sweeps: int = 0
    gaps: int = 0
    errors: list[str] = field(default_factory=list)
    _start: int | None = None
    _blocks: list[bytes] = field(default_factory=list)
    _covered: int | None = None     # blocks before this seq are accounted for
    _last: int | None = None

    def __post_init__(self) -> None:
        if not self.config.enabled or self.config.sync_blocks <= 0:
            raise ConfigError("the v2 segment decoder needs an enabled codec_v2 with sync "
                              "blocks (sync_blocks > 0), as every v2 build has")
        if self.config.grid and self.grid is None:
            raise ConfigError("codec_v2 codes over a value grid: give the segment decoder "
                              "the grid the device was loaded with")
        if self.prior is not None:
            restart_tables(self.config, self.prior)     # its shape and rows, checked once
        if self.weights is not None:
            if not self.config.code_weights:
                raise ConfigError("code weights were given for a codec_v2 without them; give "
                                  "weights only for a build with code_weights=True")
            padded_code_weights(self.weights, 1 << self.grid.bits)   # one per grid code

    @property
    def coded_config(self) -> CodecV2Config:
        """The configuration the blocks were coded with: the build's, except that a
        code-weights build with its weights off (``weights`` None) codes as one without."""
        return coded_config(self.config, self.weights)

    @property
    def pending_blocks(self) -> int:
        """Blocks of the open segment, waiting for the segment's last block."""
        return len(self._blocks)

    def push(self, seq: int, payload: bytes) -> list[V2Chunk]:
        """One COMPRESSED frame: block ``seq``'s payload. Returns the chunks it completed."""
        self.gaps += self._last is not None and seq != self._last + 1
        self._last = seq
        return self._push(seq, payload)

    def _push(self, seq: int, payload: bytes) -> list[V2Chunk]:
        sync = self.config.sync_blocks
        if self._covered is None:
            self._covered = seq
        if self._start is not None and seq == self._start + len(self._blocks) \
                and seq % sync != 0:
            self._blocks.append(bytes(payload))
            return self._complete()
        if self._start is not None:
            # a gap, a repeat or a restart inside the open segment: it cannot decode
            self._lose_open_segment()
        if seq < self._covered:
            self._covered = seq     # the device restarted its block count
        if seq % sync != 0:
            # a block of a segment whose start was lost: it cannot decode either
            self._lose(seq + 1 - self._covered)
            self._covered = seq + 1
            return []
        self._lose(seq - self._covered)
        self._covered = seq
        self._start, self._blocks = seq, [bytes(payload)]
        return self._complete()

    def finish(self, flushed: bool = False) -> list[V2Chunk]:
        """The stream has stopped. The open segment decodes only when its last block is
        known to end with the coder's flush (``flushed``: e.g. a recording the golden model
        wrote); a device's free-running coder flushes only before sync blocks, so by
        default the open segment's sweeps count as ``undecoded_sweeps``."""
        if self._start is None:
            return []
        if flushed:
            return self._decode()
        self.undecoded_sweeps += len(self._blocks) * self.config.block_sweeps
        self._covered = self._start + len(self._blocks)
        self._start, self._blocks = None, []
        return []

    def report(self) -> str:
        """The counters in one line."""
        text = (f"v2 segments: {self.decoded_sweeps} sweeps decoded, {self.lost_sweeps} lost "
                f"({self.gaps} gaps), {self.undecoded_sweeps} not decoded at "
                f"stop (segment not flushed), {self.damaged_sweeps} did not decode")
        return text + (f"; last error: {self.errors[-1]}" if self.errors else "")

    def _complete(self) -> list[V2Chunk]:
        if len(self._blocks) < self.config.sync_blocks:
            return []
        return self._decode()

    def _decode(self) -> list[V2Chunk]:
        start, blocks = self._start, self._blocks
        assert start is not None
        self._start, self._blocks = None, []
        self._covered = start + len(blocks)
        sweeps = len(blocks) * self.config.block_sweeps
        try:
            samples = decode_v2(blocks, self.channels, self.coded_config, self.grid,
                                self.weights, sweeps=sweeps, prior=self.prior)
        except CompressedBlockError as error:
            self.damaged_sweeps += sweeps
            self.errors.append(f"segment from block {start}: {error}")
            return []
        self.decoded_sweeps += sweeps
        return [V2Chunk(start * self.config.block_sweeps, samples)]

    def _lose_open_segment(self) -> None:
        assert self._start is not None
        self.lost_sweeps += len(self._blocks) * self.config.block_sweeps
        self._covered = self._start + len(self._blocks)
        self._start, self._blocks = None, []

    def _lose(self, blocks: int) -> None:
        if blocks > 0:
            self.lost_sweeps += blocks * self.config.block_sweeps
