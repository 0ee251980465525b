"""The v2 coder's code weights on the host: ``Device.load_code_weights`` over the command path
(the control model: sim/models/control.py), decoding with the weights (WEIGHTS_ON = 1) or as
without them (WEIGHTS_ON = 0), and the recorder that learns them from the grid's samples."""

import hashlib
from dataclasses import replace

import numpy as np
import pytest

from spikeforge.firmware.compression_v2 import (
    LITERALS,
    CodecV2Config,
    ValueGrid,
    cut_words,
    learn_code_weights,
    weight_pair_words,
)
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.host.device import RegisterRefused
from spikeforge.host.recorder import GridLearning, Recorder
from spikeforge.sim.models.compressor_v2 import encode_v2_stream

CODEC = CodecV2Config(enabled=True, grid=True, code_weights=True, sync_blocks=3,
                      block_sweeps=8)
#: A 6-bit grid (step 1100): 64 codes, a padded table of 128 entries, 64 WEIGHT_PAIR writes.
GRID = ValueGrid(bits=6, offset_num=-33000, step_num=1100, step_den=1)


def _weights(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(8, 256, 1 << GRID.bits)


def _grid_signal(sweeps: int, channels: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    walk = np.clip(rng.integers(-1, 2, (sweeps, channels)).cumsum(0), -8, 8)
    codes = 30 + walk + rng.integers(-3, 4, (sweeps, channels))     # all inside int16
    return GRID.table()[codes].astype(np.int16)


def _blocks(samples: np.ndarray, codec: CodecV2Config,
            weights: np.ndarray | None) -> list[bytes]:
    """Each block's COMPRESSED payload as the device sends it (flushed before each sync)."""
    stream, ends, _ = encode_v2_stream(samples, codec, GRID, weights)
    flushed = [b == len(ends) - 1 or (b + 1) % codec.sync_blocks == 0 for b in range(len(ends))]
    return cut_words(bytes(stream), ends, flushed)


# -- Device.load_code_weights ------------------------------------------------------------------

def test_load_code_weights_writes_every_pair_then_weights_on(model_device):
    from spikeforge.firmware.registers import register

    weights = _weights()
    fake, device = model_device(SystemConfig(channels=4, codec_v2=CODEC))
    with device:
        device.identify()
        assert device.code_weights is None
        device.load_code_weights(weights, GRID)
        pair, on = register("WEIGHT_PAIR").address, register("WEIGHTS_ON").address
        written = [(address, value) for address, value in fake.model.writes
                   if address in (pair, on)]
        words = weight_pair_words(weights, 64)
        assert written == [*((pair, w) for w in words), (on, 1)]
        assert len(words) == (64 + 2 * LITERALS) // 2
        # the pair holding code 0 (padded entry LITERALS) and code 1
        assert words[LITERALS // 2] == LITERALS // 2 | int(weights[0]) << 16 \
            | int(weights[1]) << 24
        assert fake.model.bank.values["WEIGHTS_ON"] == 1
        assert np.array_equal(device.code_weights, weights)
        # None switches them off: one write, no table
        count = len(fake.model.writes)
        device.load_code_weights(None, GRID)
        assert fake.model.writes[count:] == [(on, 0)]
        assert fake.model.bank.values["WEIGHTS_ON"] == 0 and device.code_weights is None
        # In lossless mode the host refuses before writing anything, and says why.
        device.set_mode("lossless")
        count = len(fake.model.writes)
        with pytest.raises(RegisterRefused, match=r"set_mode\('raw'\)\), load the weights"):
            device.load_code_weights(weights, GRID)
        assert len(fake.model.writes) == count


def test_load_code_weights_is_refused_without_them_or_for_a_table_that_does_not_fit(
        model_device):
    without = SystemConfig(channels=4, codec_v2=replace(CODEC, code_weights=False))
    fake, device = model_device(without)
    with device:
        device.identify()
        with pytest.raises(RegisterRefused, match="rebuild it with codec_v2 code_weights=True"):
            device.load_code_weights(_weights(), GRID)
        assert not fake.model.writes
    fake, device = model_device(SystemConfig(channels=4, codec_v2=CODEC))
    with device:
        device.identify()
        with pytest.raises(ConfigError, match="cannot load the code weights: .*64 integers"):
            device.load_code_weights(_weights()[:32], GRID)
        with pytest.raises(ConfigError, match="1..255"):
            device.load_code_weights(np.zeros(64, np.int64), GRID)
        wide = ValueGrid(bits=CODEC.grid_bits + 1, offset_num=0, step_num=2, step_den=1)
        with pytest.raises(RegisterRefused, match="grid_bits"):
            device.load_code_weights(None, wide)
        assert not fake.model.writes and device.code_weights is None


# -- decoding -----------------------------------------------------------------------------------

def _wire(config: SystemConfig, blocks: list[bytes]) -> tuple[bytes, list[bytes]]:
    from spikeforge.firmware.wire import FrameType, build_frame, encode_identity

    identity = build_frame(FrameType.IDENTITY, 0, encode_identity(config))
    return identity, [build_frame(FrameType.COMPRESSED, s, b) for s, b in enumerate(blocks)]


def _decoded(decoder, data: bytes) -> np.ndarray:
    from spikeforge.host import DataBlock

    blocks = [i for i in decoder.feed(data) if isinstance(i, DataBlock)]
    return np.concatenate([b.samples for b in blocks]) if blocks else np.zeros((0, 2))


def test_the_stream_decoder_decodes_with_the_weights_when_they_are_on():
    """WEIGHTS_ON = 1: blocks coded with the weights decode with them (set at the start, or
    once v2 frames flow, as Device.load_code_weights does); without them they do not."""
    from spikeforge.host import StreamDecoder

    config = SystemConfig(channels=2, codec_v2=CODEC)
    samples, weights = _grid_signal(48, 2), _weights()       # 6 blocks, 2 segments
    blocks = _blocks(samples, CODEC, weights)
    assert blocks != _blocks(samples, replace(CODEC, code_weights=False), None)
    identity, frames = _wire(config, blocks)
    decoder = StreamDecoder(grid=GRID, weights=weights)
    assert np.array_equal(_decoded(decoder, identity + b"".join(frames)), samples)
    late = StreamDecoder(grid=GRID)
    _decoded(late, identity + frames[0])
    late.weights = weights
    assert np.array_equal(_decoded(late, b"".join(frames[1:])), samples)
    unweighted = StreamDecoder(grid=GRID)
    assert len(_decoded(unweighted, identity + b"".join(frames))) == 0
    assert unweighted.v2.damaged_sweeps == 48


def test_with_the_weights_off_a_code_weights_build_decodes_as_one_without():
    """WEIGHTS_ON = 0 (reset, or record --no-code-weights): the device codes exactly as
    code_weights=False; the host, given no weights, decodes so."""
    from spikeforge.host import StreamDecoder
    from spikeforge.host.compression_v2_stream import V2SegmentDecoder

    config = SystemConfig(channels=2, codec_v2=CODEC)
    samples = _grid_signal(48, 2)
    blocks = _blocks(samples, replace(CODEC, code_weights=False), None)
    identity, frames = _wire(config, blocks)
    decoder = StreamDecoder(grid=GRID)
    assert np.array_equal(_decoded(decoder, identity + b"".join(frames)), samples)
    assert decoder.v2.config.code_weights and decoder.v2.damaged_sweeps == 0
    with pytest.raises(ConfigError, match="code_weights=True"):
        V2SegmentDecoder(2, replace(CODEC, code_weights=False), GRID, weights=_weights())
    with pytest.raises(ConfigError, match="64 integers"):
        V2SegmentDecoder(2, CODEC, GRID, weights=_weights()[:8])


# -- the recorder -------------------------------------------------------------------------------

class _LoadingDevice:
    """What the recorder asks of the device when it leaves the raw start, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def load_grid(self, grid: ValueGrid) -> None:
        self.calls.append(("load_grid", grid))

    def load_code_weights(self, weights: np.ndarray | None, grid: ValueGrid) -> None:
        self.calls.append(("load_code_weights", weights, grid))

    def switch_to_lossless(self) -> None:
        self.calls.append(("switch_to_lossless",))


def _recorder_at_the_end_of_learning(code_weights: bool) -> tuple[Recorder, _LoadingDevice,
                                                                  list[np.ndarray]]:
    device = _LoadingDevice()
    recorder = Recorder(device, None, mode="lossless", code_weights=code_weights)  # type: ignore[arg-type]
    recorder.config = SystemConfig(channels=4, codec_v2=CODEC)
    recorder.learning = GridLearning(sweeps=3000, max_bits=CODEC.grid_bits)
    recorder.facts = {"grid": None, "grid_learning": {},
                      "code_weights": {"learned_from": None, "loaded": False}}
    taken = [_grid_signal(2000, 4, seed=5), _grid_signal(2000, 4, seed=6)]
    assert not recorder.learning.take(taken[0]) and recorder.learning.take(taken[1])
    return recorder, device, [taken[0], taken[1][:1000]]


def test_the_recorder_learns_the_weights_from_the_grids_samples_and_loads_them_before_lossless():
    recorder, device, learned_from = _recorder_at_the_end_of_learning(code_weights=True)
    recorder._enter_lossless()
    (_, grid), (_, weights, weights_grid), switch = device.calls
    assert weights_grid == grid and switch == ("switch_to_lossless",)
    assert grid.step == 1100
    assert np.array_equal(weights, learn_code_weights(learned_from, grid))
    assert (weights != 64).any()        # the samples show codes more common than others
    facts = recorder.facts["code_weights"]
    assert facts["loaded"] is True and facts["weights"] == weights.tolist()
    assert facts["learned_from"] == "first 3000 sweeps (0.1 s) of this stream"
    assert facts["sha256"] == hashlib.sha256(weights.astype(np.uint8).tobytes()).hexdigest()
    assert facts["weighted_codes"] == int((weights != 64).sum())


def test_the_recorder_without_code_weights_switches_them_off():
    recorder, device, _ = _recorder_at_the_end_of_learning(code_weights=False)
    recorder._enter_lossless()
    (_, grid), (_, weights, _), _ = device.calls
    assert weights is None          # WEIGHTS_ON = 0: the device may hold an earlier table
    facts = recorder.facts["code_weights"]
    assert facts["loaded"] is False and "--no-code-weights" in facts["reason"]


def test_record_takes_no_code_weights_and_learns_them_by_default():
    from spikeforge.cli import build_parser

    parser = build_parser()
    base = ["record", "--port", "sim://", "--out", "rec", "--mode", "lossless"]
    assert parser.parse_args(base).code_weights is True
    assert parser.parse_args([*base, "--no-code-weights"]).code_weights is False


def test_the_device_refuses_v2_table_writes_in_lossless(model_device):
    """The control model locks the grid's, the prior's and the weights' registers in
    lossless mode, as the device does (hdl/top.py): a direct write is not carried out."""
    codec = replace(CODEC, sync_blocks=2, restart_prior=True)
    fake, device = model_device(SystemConfig(channels=4, codec_v2=codec))
    with device:
        device.identify()
        names = ("GRID_SHIFT", "PRIOR_ON", "WEIGHTS_ON", "WEIGHT_PAIR")
        for name in names:
            assert device.write_register(name, 1) == 1
        device.set_mode("lossless")
        for name in names:
            assert device.write_register(name, 0) == 1, f"{name} written in lossless"
        device.set_mode("raw")
        assert [device.write_register(name, 0) for name in names] == [0] * len(names)
