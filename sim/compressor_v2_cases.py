"""`make sim` cases of the v2 coder's gateware (hdl/compressor_v2.py, hdl/compressor_v2_coder.py)
and the stimuli they drive: random and adversarial signals (white noise, rails, steps,
bursts of samples that share one context table, and for the running budget: noise bursts
that send samples verbatim from the middle of a block, spikes at a block's start that its
slack absorbs; over a value grid: an N1-like stream with clipped samples and off-grid
values, escapes with the widest fields, white noise through a grid; sync blocks, the state
reset and the coder flushed and restarted). Every case is compared with the golden
model's own stream."""

import random
from dataclasses import replace
from typing import Any

import numpy as np

from spikeforge.firmware.compression_v2 import CodecV2Config, ValueGrid

from .stimuli import codec_stimulus
from .suite_case import BenchCase

__all__ = ["CASES", "V2_STIMULI", "GRID_STIMULI", "PRIOR_KINDS", "v2_stimulus", "grid_of",
           "load_grid", "prior_of", "load_prior", "WEIGHT_KINDS", "weights_of", "load_weights"]

#: Stimuli of :func:`v2_stimulus` (besides the v1 coder's, :data:`~spikeforge.sim.stimuli.
#: CODEC_STIMULI`).
V2_STIMULI = ("white", "rails", "steps", "same-context", "quiet", "mixed", "bursts",
              "spike-early", "floor")
#: Stimuli on a value grid (:func:`grid_of` gives each its grid).
GRID_STIMULI = ("grid-n1", "grid-wide", "grid-white")


def grid_of(kind: str) -> ValueGrid | None:
    """The value grid a stimulus is made on (None: not a grid stimulus). grid-n1 and
    grid-white: a 10-bit ADC over the full scale, truncated (as N1's files); grid-wide: an
    8-bit grid covering only 31000..31765 (step 3), so values below it are escapes whose
    offset from the clamped code's value is up to 17 bits zigzagged."""
    if kind in ("grid-n1", "grid-white"):
        return ValueGrid.full_scale(10, "toward_zero")
    if kind == "grid-wide":
        return ValueGrid(8, 31000, 3, 1, "nearest")
    return None


def v2_bench_inputs(params: dict[str, Any]
                    ) -> tuple[CodecV2Config, int, int, random.Random, np.ndarray]:
    """A v2 bench's (codec, channels, sweeps, rng, samples) from its case parameters: the
    rng (input gaps, back-pressure) and the stimulus both seeded by ``seed`` (default 1)."""
    seed = int(params.get("seed", 1))
    channels, sweeps = int(params["channels"]), int(params["sweeps"])
    return (CodecV2Config(**params["codec"]), channels, sweeps, random.Random(seed),
            v2_stimulus(params["stimulus"], sweeps, channels, seed))


def v2_stimulus(kind: str, sweeps: int, channels: int, seed: int = 0) -> np.ndarray:
    """int16 samples ``(sweeps, channels)``:

    white: full-scale uniform noise (the widest residuals, every bucket); rails: clipped
    square waves and random jumps between -32768 and 32767; steps: small noise on DC
    levels that jump by up to the full scale; same-context: every channel the same small
    noise level, so consecutive samples use one CDF table, with bursts of spikes that move
    them all to another at once; quiet: +-1 noise and silence; mixed: each channel its own
    scale (2**0 .. 2**14), so the table changes from one sample to the next; bursts: small
    noise, full-scale noise on every channel in sweeps 2..11 of every 16 (from the middle
    of a block of 8 or 16 sweeps the running budget sends samples verbatim); spike-early:
    small noise, and every 8 sweeps (the first sweep of a block of 4 or 8) a full-scale
    spike on channels 0 and 1 (the two first samples of the block cost more than raw: the
    budget's slack absorbs them); floor: silence for the first tenth of the sweeps, then
    full-scale noise (in one block of 4096 sweeps x 2 channels the silence saves beyond
    ACCOUNT_FLOOR_EIGHTHS, and only the floor sends the block's end verbatim). On a value
    grid (:func:`grid_of`): grid-n1: each channel a random walk of codes with spikes,
    values from the grid's table, channel 1 clipped (-32768, code 0) every 5th sweep, and
    every 7th sample (in stream order) off the grid by 1..60 (an ESCAPE); grid-wide: codes
    on the narrow grid, and every 4th sample a value far below it (-32768 .. -20000: the
    widest offsets); grid-white: full-scale uniform noise (nearly every sample off the
    grid, so the budget sends the blocks verbatim). Other kinds are the v1 coder's
    (:func:`~spikeforge.sim.stimuli.codec_stimulus`).
    """
    rng = np.random.default_rng(seed)
    n = np.arange(sweeps)[:, None]
    if kind == "white":
        x = rng.integers(-32768, 32768, (sweeps, channels))
    elif kind == "rails":
        square = np.where((n // rng.integers(1, 4, channels)) % 2, 32767, -32768)
        jumps = rng.random((sweeps, channels)) < 0.3
        x = np.where(jumps, rng.choice([-32768, 32767, 0], (sweeps, channels)), square)
    elif kind == "steps":
        levels = rng.integers(-32768, 32768, (sweeps // 6 + 1, channels))
        x = np.repeat(levels, 6, axis=0)[:sweeps] + rng.integers(-3, 4, (sweeps, channels))
    elif kind == "same-context":
        x = rng.normal(0, 6, (sweeps, channels))
        burst = (n % 16 >= 10) & (n % 16 < 12)
        x = x + np.where(burst, rng.normal(0, 3000, (sweeps, channels)), 0)
    elif kind == "quiet":
        x = rng.integers(-1, 2, (sweeps, channels)) * (rng.random((sweeps, channels)) < 0.5)
    elif kind == "mixed":
        scales = 2.0 ** rng.integers(0, 15, channels)
        x = rng.normal(0, 1, (sweeps, channels)) * scales[None, :]
    elif kind == "bursts":
        x = rng.normal(0, 3, (sweeps, channels))
        burst = (n % 16 >= 2) & (n % 16 < 12)
        x = np.where(burst, rng.integers(-32768, 32768, (sweeps, channels)), x)
    elif kind == "floor":
        x = rng.integers(-32768, 32768, (sweeps, channels))
        x[:sweeps // 10] = 0
    elif kind == "spike-early":
        x = rng.normal(0, 3, (sweeps, channels))
        spike = (n % 8 == 0) & (np.arange(channels)[None, :] < 2)
        x = np.where(spike, rng.choice([-30000, 30000], (sweeps, channels)), x)
    elif kind in GRID_STIMULI:
        return _grid_stimulus(kind, sweeps, channels, rng)
    else:
        return codec_stimulus(kind, sweeps, channels, seed)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


async def load_grid(dut: Any, grid: ValueGrid | None) -> None:
    """A bench's host set-up before lossless starts (after reset): the grid's table, one
    entry a cycle through the core's write port, and its value -> code registers."""
    if grid is None:
        return
    from cocotb.triggers import RisingEdge

    from spikeforge.hdl.compressor_v2 import GRID_VALUE_BITS

    mask = (1 << GRID_VALUE_BITS) - 1
    reciprocal, shift = grid.reciprocal
    dut.grid_base.value = grid.base & mask
    dut.grid_reciprocal.value = reciprocal
    dut.grid_shift.value = shift
    dut.grid_code_max.value = (1 << grid.bits) - 1
    for address, value in enumerate(grid.table().tolist()):
        dut.grid_addr.value = address
        dut.grid_data.value = max(min(value, mask >> 1), -(mask >> 1) - 1) & mask
        dut.grid_write.value = 1
        await RisingEdge(dut.clk)
    dut.grid_write.value = 0


#: Restart priors a case can load (``params["prior"]``; :func:`prior_of`).
PRIOR_KINDS = ("learned", "skewed")


def prior_of(params: dict[str, Any], codec: CodecV2Config) -> np.ndarray | None:
    """The restart prior a case loads (None: none, ``prior_on`` stays 0). learned: the
    tables at the end of coding another stimulus (steps and mixed noise, 4 channels, its
    own seed), as :func:`~spikeforge.sim.compression_bench.restart_prior_from` learns
    one; skewed: an adversarial prior, every table's whole span on one symbol (context c
    on symbol c * 3 mod SYMBOLS: literals, buckets and the ESCAPE), so every other
    symbol starts at frequency 1."""
    from spikeforge.firmware.compression_v2 import SYMBOLS, restart_tables
    from spikeforge.sim.models.compressor_v2 import encode_v2_stream

    kind = params.get("prior")
    if kind is None:
        return None
    if kind not in PRIOR_KINDS:
        raise ValueError(f"prior {kind!r} is not one of {PRIOR_KINDS}")
    tables, _ = restart_tables(codec)
    if kind == "learned":
        other = replace(codec, sync_blocks=0, grid=False, restart_prior=False,
                        code_weights=False)
        samples = np.concatenate([v2_stimulus("steps", 300, 4, 7),
                                  v2_stimulus("mixed", 300, 4, 8)])
        encode_v2_stream(samples, other, end_tables=tables)
        return tables
    top = tables[0, -1]
    for c in range(codec.contexts):
        s = (3 * c) % SYMBOLS
        tables[c, 1:1 + s] = 0
        tables[c, 1 + s:] = top
    return tables


async def load_prior(dut: Any, codec: CodecV2Config, prior: np.ndarray | None) -> None:
    """A bench's host set-up of the restart prior (``codec.restart_prior`` builds): every
    PRIOR_ENTRY word through the core's write port, one a cycle, then ``prior_on``; with no
    prior, ``prior_on`` 0."""
    if not codec.restart_prior:
        assert prior is None, "a prior for a build without restart_prior"
        return
    from cocotb.triggers import RisingEdge

    from spikeforge.firmware.compression_v2 import prior_words

    dut.prior_on.value = 0
    for word in prior_words(codec, prior) if prior is not None else []:
        dut.prior_context.value = word & 0xF
        dut.prior_index.value = (word >> 4) & 0x3F
        dut.prior_data.value = word >> 10
        dut.prior_write.value = 1
        await RisingEdge(dut.clk)
    dut.prior_write.value = 0
    dut.prior_on.value = int(prior is not None)


#: Code weights a case can load (``params["weights"]``; :func:`weights_of`).
WEIGHT_KINDS = ("learned", "random", "heavy", "light", "alternating")


def weights_of(params: dict[str, Any], grid: ValueGrid | None) -> np.ndarray | None:
    """The code weights a case loads (None: none, ``weights_on`` stays 0). learned:
    :func:`~spikeforge.firmware.compression_v2.learn_code_weights` on another stimulus of
    the same grid (its own seed, every code seen 5 times counted); random: each code 1..255;
    heavy: every code 255 (the widest weighted total); light: every code 1 (each literal's
    frequency / 64, at least 1: the narrowest); alternating: 1 and 255 by turns (the
    steepest neighbours)."""
    from spikeforge.firmware.compression_v2 import learn_code_weights

    kind = params.get("weights")
    if kind is None:
        return None
    if kind not in WEIGHT_KINDS or grid is None:
        raise ValueError(f"weights {kind!r} need a grid stimulus and one of {WEIGHT_KINDS}")
    codes = 1 << grid.bits
    if kind == "learned":
        other = v2_stimulus(params["stimulus"], 400, 8, int(params.get("seed", 1)) + 11)
        return learn_code_weights([other], grid, smooth_codes=4, min_count=5.0)
    if kind == "random":
        return np.random.default_rng(int(params.get("seed", 1))).integers(1, 256, codes)
    if kind == "alternating":
        return np.where(np.arange(codes) % 2 == 0, 1, 255)
    return np.full(codes, 255 if kind == "heavy" else 1)


async def load_weights(dut: Any, codec: CodecV2Config, grid: ValueGrid | None,
                       weights: np.ndarray | None) -> None:
    """A bench's host set-up of the code weights (``codec.code_weights`` builds): every
    WEIGHT_PAIR word for the grid's codes through the core's write port, one a cycle, then
    ``weights_on``; with no weights, ``weights_on`` 0."""
    if not codec.code_weights:
        assert weights is None, "code weights for a build without them"
        return
    from cocotb.triggers import RisingEdge

    from spikeforge.firmware.compression_v2 import weight_pair_words

    dut.weights_on.value = 0
    for word in weight_pair_words(weights, 1 << grid.bits) if weights is not None else []:
        dut.weight_pair.value = word & 0xFFF
        dut.weight_data.value = word >> 16
        dut.weight_write.value = 1
        await RisingEdge(dut.clk)
    dut.weight_write.value = 0
    dut.weights_on.value = int(weights is not None)


def _grid_stimulus(kind: str, sweeps: int, channels: int,
                   rng: np.random.Generator) -> np.ndarray:
    grid = grid_of(kind)
    table = grid.table()
    top = (1 << grid.bits) - 1
    if kind == "grid-white":
        return rng.integers(-32768, 32768, (sweeps, channels)).astype(np.int16)
    steps = rng.normal(0, 2, (sweeps, channels))
    steps += np.where(rng.random((sweeps, channels)) < 0.03,
                      rng.normal(0, top / 8, (sweeps, channels)), 0)
    codes = np.clip(np.rint(top / 2 + np.cumsum(steps, axis=0)), 0, top).astype(np.int64)
    x = table[codes]
    flat = x.reshape(-1)                      # stream order (sweep-major)
    if kind == "grid-n1":
        if channels > 1:
            x[::5, 1] = -32768
        flat[3::7] += rng.integers(1, 61, flat[3::7].shape)
    else:
        flat[2::4] = rng.integers(-32768, -20000, flat[2::4].shape)
    return np.clip(x, -32768, 32767).astype(np.int16)


def _extras(prior: str | None, weights: str | None) -> tuple[str, dict]:
    """A case's label suffix and parameters for its prior and code weights."""
    extra = {**({"prior": prior} if prior else {}), **({"weights": weights} if weights else {})}
    return "".join(f" {k}={v}" for k, v in extra.items()), extra


def _case(channels: int, stimulus: str, sweeps: int, stall: str, gap: int = 0,
          prior: str | None = None, weights: str | None = None, **codec: Any) -> BenchCase:
    if stimulus in GRID_STIMULI:
        codec = {"grid": True, **codec}
    from spikeforge.hdl.compressor_v2 import CompressorV2Symbols

    config = CodecV2Config(enabled=True, **codec)
    changed = ",".join(f"{k}={v}" for k, v in codec.items())
    suffix, extra = _extras(prior, weights)
    return BenchCase(
        bench="compressor_v2",
        label=f"symbols {channels}ch {stimulus} x{sweeps} stall={stall} gap={gap}"
              f"{' ' + changed if changed else ''}{suffix}",
        component=lambda: CompressorV2Symbols(channels, config),
        params={"codec": config.to_dict(), "channels": channels, "stimulus": stimulus,
                "sweeps": sweeps, "stall": stall, "gap": gap, **extra},
    )


CASES: tuple[BenchCase, ...] = (
    _case(8, "white", 64, "random"),
    _case(6, "rails", 64, "random"),
    _case(5, "steps", 96, "none"),
    _case(16, "same-context", 64, "random"),
    _case(7, "mixed", 64, "random", gap=3),
    _case(4, "spikes", 200, "random"),
    _case(3, "quiet", 60, "random", gap=2),       # 3 channels: the channel hazard stalls
    _case(9, "dc-steps", 80, "none", taps=3, level_tap=False, contexts=5, shift_offset=0,
          rate_max=6, mu=3, weight_bits=6),
    _case(6, "saturation", 80, "random", taps=16, contexts=12, shift_offset=2, rate_max=12,
          weight_bits=12),
    # the value grid (grid=True): codes and escapes, clipped samples, the widest offsets
    # (an 8-bit grid in a 12-bit build), off-grid noise; 3 channels: the hazard with the
    # grid's front stages
    _case(8, "grid-n1", 96, "random", gap=2),
    _case(3, "grid-n1", 60, "random"),
    _case(6, "grid-wide", 64, "random", grid_bits=12, taps=3, level_tap=False, contexts=5,
          shift_offset=0, rate_max=6, mu=3, weight_bits=6),
    _case(5, "grid-white", 48, "random"),
    # sync blocks: the state's epoch bits and the tables' fresh bits
    _case(5, "same-context", 48, "random", block_sweeps=3, sync_blocks=1),
    _case(3, "grid-n1", 48, "random", block_sweeps=2, sync_blocks=3),
    # the restart prior: loaded rows read at every start and sync block at the slow rate
    # (an adversarial prior: each table's span on one symbol), and a prior build with
    # prior_on 0 (the initial CDF, as without the prior)
    _case(6, "same-context", 64, "random", prior="skewed", block_sweeps=4, sync_blocks=2,
          restart_prior=True),
    _case(5, "mixed", 48, "random", block_sweeps=3, sync_blocks=1, restart_prior=True),
    # code weights: every literal's frequency times its code's weight, the total onto the
    # coder's 2**15 (learned weights with the prior and sync blocks; the widest and the
    # narrowest weighted totals; random and alternating weights over escapes and clipped
    # samples; a weights build with weights_on 0)
    _case(6, "grid-n1", 64, "random", weights="learned", code_weights=True, block_sweeps=4,
          sync_blocks=2, restart_prior=True, prior="learned"),
    _case(4, "grid-n1", 48, "random", weights="heavy", code_weights=True),
    _case(4, "grid-n1", 48, "random", gap=2, weights="light", code_weights=True),
    _case(5, "grid-n1", 48, "random", weights="random", code_weights=True),
    _case(3, "grid-wide", 48, "random", weights="alternating", code_weights=True,
          grid_bits=12),
    _case(4, "grid-n1", 32, "random", code_weights=True),
)


def _coder_case(channels: int, stimulus: str, sweeps: int, stall: str,
                prior: str | None = None, weights: str | None = None,
                **codec: Any) -> BenchCase:
    if stimulus in GRID_STIMULI:
        codec = {"grid": True, **codec}
    from spikeforge.hdl.compressor_v2_coder import CompressorV2

    config = CodecV2Config(enabled=True, **codec)
    changed = ",".join(f"{k}={v}" for k, v in codec.items())
    suffix, extra = _extras(prior, weights)
    return BenchCase(
        bench="compressor_v2_coder",
        label=f"coder {channels}ch {stimulus} x{sweeps} stall={stall}"
              f"{' ' + changed if changed else ''}{suffix}",
        component=lambda: CompressorV2(channels, config),
        params={"codec": config.to_dict(), "channels": channels, "stimulus": stimulus,
                "sweeps": sweeps, "stall": stall, **extra},
    )


CASES = CASES + (
    _coder_case(8, "white", 64, "random", block_sweeps=8),
    _coder_case(6, "rails", 48, "random", block_sweeps=4),
    _coder_case(5, "steps", 96, "none", block_sweeps=32),
    _coder_case(16, "same-context", 64, "random", block_sweeps=16),
    _coder_case(7, "mixed", 60, "random", block_sweeps=5),
    _coder_case(4, "spikes", 192, "random", block_sweeps=32),
    _coder_case(3, "quiet", 60, "random", block_sweeps=1),
    _coder_case(9, "dc-steps", 80, "none", block_sweeps=10, taps=3, level_tap=False,
                contexts=5, shift_offset=0, rate_max=6, mu=3, weight_bits=6),
    # the running budget: verbatim from the middle of a block (and the next block coded
    # again), and a spike at each block's start that the slack absorbs
    _coder_case(6, "bursts", 64, "random", block_sweeps=8),
    _coder_case(5, "spike-early", 64, "random", block_sweeps=8),
    # the account's floor: one long block (8192 samples)
    _coder_case(2, "floor", 4096, "none", block_sweeps=4096),
    # the value grid: escapes coded (their 7 raw pieces), clipped samples, the widest
    # offsets (until the budget sends the block's rest verbatim), off-grid noise verbatim
    _coder_case(8, "grid-n1", 96, "random", block_sweeps=16),
    _coder_case(5, "grid-wide", 64, "random", block_sweeps=4, grid_bits=12),
    _coder_case(6, "grid-white", 48, "random", block_sweeps=8),
    _coder_case(4, "grid-n1", 64, "none", block_sweeps=8, taps=3, level_tap=False,
                contexts=5, shift_offset=0, rate_max=6, mu=3, weight_bits=6),
    # sync blocks: every state reset at a sync block's first sample (the channels' epoch
    # bits, the tables' fresh bits), a flush ending the block before it (its tokens carry
    # block_end and flush), the coder restarted. Grid and escapes with the channel hazard
    # (3 channels), ending on a sync flush; the budget verbatim mid-block, ending inside a
    # sync period; white noise verbatim; one table across every sync (the forwarded row)
    _coder_case(3, "grid-n1", 60, "random", block_sweeps=4, sync_blocks=1),
    _coder_case(5, "bursts", 64, "random", block_sweeps=4, sync_blocks=3),
    _coder_case(3, "white", 48, "random", block_sweeps=4, sync_blocks=3),
    _coder_case(5, "same-context", 48, "random", block_sweeps=3, sync_blocks=1),
    # the restart prior (learned from other stimuli) over a grid, every sync block
    _coder_case(4, "grid-n1", 64, "random", prior="learned", block_sweeps=4, sync_blocks=2,
                restart_prior=True),
    # code weights (learned, and random over escapes) with the prior, every sync block
    _coder_case(4, "grid-n1", 64, "random", weights="learned", code_weights=True,
                block_sweeps=4, sync_blocks=2, restart_prior=True, prior="learned"),
    _coder_case(5, "grid-n1", 48, "random", weights="random", code_weights=True,
                block_sweeps=8),
)
