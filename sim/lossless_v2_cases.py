"""`make sim` cases of the v2 lossless coder as the system builds it (hdl/lossless_v2.py:
sample FIFO, CompressorV2, CodedWordsV2, the framer's per-block word limit), and the model
of what it must send: the golden model's stream
(:func:`~spikeforge.sim.models.compressor_v2.encode_v2_stream`) cut into link words
(:func:`~spikeforge.firmware.compression_v2.cut_words`), each block limited to the
reservation ``limit`` (``config.coded_worst_words``): a block of more words keeps its first
``limit - 1`` words and its last, marked damaged.

Samples arrive channel-serial, one a clock within a sweep, a sweep starting every
``sweep_cycles`` cycles (``sweep_cycles`` <= channels: back to back, no gap at all); the
source never waits. Cases: N1-like samples on a 10-bit grid (clipped samples, off-grid
escapes) with the FIFO absorbing the coder's stalls; off-grid white noise (verbatim blocks,
back to back); silence (blocks that carry no word); several sync periods; the word limit
tightened below the real bound (a test-only config: no signal reaches the real one); and
samples faster than the coder drains (escapes with the widest offsets back to back) so the
FIFO overflows and every later block is marked damaged; the coder in a clock domain of its
own (``coder_period_ps``: ``LosslessV2(config, "coder")``, the bench drives ``coder_clk``),
slower than sync at the ULX3S's ratio and load, and faster."""

from dataclasses import dataclass
from typing import Any

from spikeforge.boards.registry import ULX3S_CLOCK_HZ
from spikeforge.boards.ulx3s import CODER_CLOCK_HZ
from spikeforge.firmware.compression_v2 import CodecV2Config
from spikeforge.firmware.config import SystemConfig

from .suite_case import BenchCase

__all__ = ["CASES", "WordLimitConfig", "system_config", "expected_blocks", "limit_block"]


@dataclass(frozen=True)
class WordLimitConfig(SystemConfig):
    """A test-only :class:`SystemConfig` whose ``coded_worst_words`` is ``word_limit``
    (when nonzero) instead of the coder's real bound: the only way to reach the word limit
    with real samples, since no signal makes a block exceed the real bound (only a 0xFF run
    longer than it, see :attr:`SystemConfig.coded_worst_words`)."""

    word_limit: int = 0

    @property
    def coded_worst_words(self) -> int:
        return self.word_limit or super().coded_worst_words


def system_config(channels: int, codec: CodecV2Config, word_limit: int = 0) -> SystemConfig:
    """The build a case runs: ``channels`` at 30 kHz on a 12 MHz clock, the v2 coder."""
    common: dict[str, Any] = {"channels": channels, "clock_hz": 12_000_000,
                              "sample_rate_hz": 30_000, "link_buffer_samples": 4096,
                              "codec_v2": codec}
    if word_limit:
        return WordLimitConfig(word_limit=word_limit, **common)
    return SystemConfig(**common)


def expected_blocks(samples, codec: CodecV2Config, grid, prior=None,
                    weights=None) -> list[bytes]:
    """The link's blocks for ``samples`` (whole sync periods: the model's final flush is the
    sync flush the device makes there), coded from the restart ``prior`` and with the code
    ``weights`` if given."""
    from spikeforge.firmware.compression_v2 import cut_words
    from spikeforge.sim.models.compressor_v2 import encode_v2_stream

    stream, ends, _ = encode_v2_stream(samples, codec, grid, weights, prior=prior)
    flushed = [(b + 1) % codec.sync_blocks == 0 for b in range(len(ends))]
    return cut_words(bytes(stream), list(ends), flushed)


def limit_block(block: bytes, limit: int) -> tuple[list[int], bool, bool]:
    """What the core sends for one model block under the word limit: ``(words, empty,
    damaged)``; ``words`` are the data of every word sent, the last one included (an empty
    block sends one marker word whose data is not part of the block: ``[]``)."""
    words = [block[k] | block[k + 1] << 8 for k in range(0, len(block), 2)]
    if not words:
        return [], True, limit < 1
    if len(words) <= limit:
        return words, False, False
    return words[:limit - 1] + words[-1:], False, True


def _case(channels: int, stimulus: str, sweeps: int, sweep_cycles: int, what: str, *,
          word_limit: int = 0, overflow: bool = False, seed: int = 1,
          coder_period_ps: int = 0, prior: str | None = None, weights: str | None = None,
          **codec: Any) -> BenchCase:
    from .compressor_v2_cases import GRID_STIMULI

    if stimulus in GRID_STIMULI:
        codec = {"grid": True, **codec}
    config_v2 = CodecV2Config(enabled=True, **codec)
    period = config_v2.block_sweeps * config_v2.sync_blocks
    if sweeps % period:
        raise ValueError(f"a case ends at a sync period's end: {sweeps} sweeps is not a "
                         f"multiple of {period}")
    config = system_config(channels, config_v2, word_limit)
    changed = ",".join(f"{k}={v}" for k, v in codec.items() if k != "grid")

    def build():
        from spikeforge.hdl.lossless_v2 import LosslessV2

        return LosslessV2(config, "coder" if coder_period_ps else "sync")

    return BenchCase(
        bench="lossless_v2",
        label=f"lossless_v2 {what} {channels}ch {stimulus} x{sweeps} sweep={sweep_cycles}cyc"
              f" {changed}" + (f" limit={word_limit}" if word_limit else "")
              + (f" coder={coder_period_ps}ps" if coder_period_ps else "")
              + (f" prior={prior}" if prior else "")
              + (f" weights={weights}" if weights else ""),
        component=build,
        params={"codec": config_v2.to_dict(), "channels": channels,
                "channel_bits": config.channel_bits, "stimulus": stimulus, "sweeps": sweeps,
                "sweep_cycles": sweep_cycles, "limit": config.coded_worst_words,
                "overflow": overflow, "seed": seed, "coder_period_ps": coder_period_ps,
                **({"prior": prior} if prior else {}),
                **({"weights": weights} if weights else {})},
    )


#: The ULX3S's coder clock against the bench's 10 ns sync clock (45 / 36.5625 MHz).
CODER_PERIOD_PS = round(10_000 * ULX3S_CLOCK_HZ / CODER_CLOCK_HZ)

#: One grid build (8 channels, 10-bit codes, blocks of 4 sweeps, syncs of 4 blocks) and one
#: plain build (3 channels, one-sweep blocks, syncs of 4) carry most cases: one Verilator
#: build each.
_GRID = {"block_sweeps": 4, "sync_blocks": 4}
_PLAIN = {"block_sweeps": 1, "sync_blocks": 4}

CASES: tuple[BenchCase, ...] = (
    # N1-like: a 10-bit grid, clipped samples, an off-grid escape every 7th sample; a sweep
    # one sample a clock, then one idle cycle (89 % load): the FIFO takes the coder's stalls
    _case(8, "grid-n1", 256, 9, "n1", **_GRID),
    # off-grid white noise back to back: verbatim blocks, two bytes a sample
    _case(8, "grid-white", 32, 8, "verbatim", **_GRID),
    # faster than the coder drains: N1-like samples back to back (a sample every clock for
    # ever, 100 % load), the coder's stalls (escapes, flushes: ~2 % of the samples) pile up
    # until the FIFO overflows (after ~440 sweeps); the blocks before the first lost
    # sample are the model's, every later one damaged
    _case(8, "grid-n1", 512, 8, "overflow", overflow=True, **_GRID),
    # silence: blocks that carry no word (empty markers)
    _case(3, "quiet", 48, 6, "empty", **_PLAIN),
    # several sync periods (12): flushes, pads, the coder restarted
    _case(3, "bursts", 48, 4, "sync", **_PLAIN),
    # the word limit, tightened below the real bound (test-only config): blocks of more than
    # 9 words (14 of 32, 10 to 12 words) keep their first 8 words and their last, marked
    # damaged; blocks of 1 to 9 words (some exactly 9) pass whole
    _case(4, "bursts", 64, 6, "word-limit", word_limit=9, block_sweeps=2, sync_blocks=4),
    # the coder in a clock domain of its own at the ULX3S's ratio (sync 45 MHz, coder
    # 36.5625: the bench's 10 ns and 12.3 ns) and the load of 1024 channels at 30 kS/s
    # there (1.46 sync cycles a sample: 8 samples in 12 cycles, 1.19 coder cycles each)
    _case(8, "grid-n1", 256, 12, "coder-clock n1", coder_period_ps=CODER_PERIOD_PS, **_GRID),
    # a coder clock faster than sync and unrelated to it: words wait in the return FIFO
    _case(3, "bursts", 48, 3, "coder-clock fast", coder_period_ps=3_700, **_PLAIN),
    # the restart prior and the code weights, written from sync into the coder's own clock
    # domain; the prior read at the start and every sync block at the slow rate, the
    # weights on every unshifted residual; decode_v2 with the same prior and weights
    _case(8, "grid-n1", 256, 12, "prior", coder_period_ps=CODER_PERIOD_PS, prior="learned",
          weights="learned", restart_prior=True, code_weights=True, **_GRID),
)
