"""The lossless coder's golden model and the host decoder: exact round trips, the documented
bit layout, the worst-case bound, the codebook."""

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikeforge.firmware.compression import (
    PREDICTORS,
    Codebook,
    CodecConfig,
    learn_codebook,
    worst_case_bits,
)
from spikeforge.firmware.errors import ConfigError
from spikeforge.host.compression import CompressedBlockError, decode, decode_block
from spikeforge.sim.models.compressor import encode, symbols
from spikeforge.sim.stimuli import CODEC_STIMULI, codec_stimulus

#: ``../shared/data/n1-dev`` beside the repository (or SPIKEFORGE_N1_DATA); tests that need
#: it skip, saying so, where it is absent.
N1_DATA = Path(os.environ.get("SPIKEFORGE_N1_DATA",
                              Path(__file__).resolve().parents[3] / "shared/data/n1-dev"))


def round_trip(samples, config, codebook=None):
    blocks = encode(samples, config, codebook)
    decoded = decode(blocks, samples.shape[1], config, codebook, sweeps=len(samples))
    np.testing.assert_array_equal(decoded, samples)
    return blocks


@pytest.mark.parametrize("kind", CODEC_STIMULI)
@pytest.mark.parametrize("predictor", list(PREDICTORS))
def test_every_stimulus_round_trips_exactly_with_every_predictor(kind, predictor):
    for channels, block_sweeps in ((1, 1), (3, 16), (8, 37)):
        samples = codec_stimulus(kind, 150, channels, seed=channels)
        codebook = learn_codebook(samples)
        config = CodecConfig(block_sweeps=block_sweeps, predictor=predictor,
                             codebook=codebook is not None)
        blocks = round_trip(samples, config, codebook)
        bound = worst_case_bits(channels, block_sweeps, config) // 8
        assert all(len(b) <= bound for b in blocks), "a block exceeds the documented bound"


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    channels=st.integers(1, 6),
    sweeps=st.integers(1, 80),
    block_sweeps=st.integers(1, 40),
    predictor=st.sampled_from(list(PREDICTORS)),
    rice_shift=st.integers(0, 7),
    select_shift=st.integers(0, 7),
    initial_k=st.integers(0, 15),
    escape=st.integers(1, 32),
)
def test_random_signals_and_parameters_round_trip(data, channels, sweeps, block_sweeps,
                                                  predictor, rice_shift, select_shift,
                                                  initial_k, escape):
    scale = data.draw(st.sampled_from([1, 16, 1000, 40000]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    walk = np.cumsum(rng.integers(-scale, scale + 1, (sweeps, channels)), axis=0)
    samples = (((walk + 32768) % 65536) - 32768).astype(np.int16)
    config = CodecConfig(block_sweeps=block_sweeps, predictor=predictor, rice_shift=rice_shift,
                         select_shift=select_shift, initial_k=initial_k,
                         escape_threshold=escape)
    blocks = round_trip(samples, config)
    assert len(blocks) == -(-sweeps // block_sweeps)


def test_bit_layout_is_the_documented_one():
    # Sweep 0 raw (16 bits), then u = zigzag(6 - 5) = 2 with k = 0: unary "11" and a "0";
    # S becomes 2, so k = bitlen(2 >> 1) = 1: u = zigzag(2 - 6) = 7 is q = 3 ("111" "0") and
    # the low bit "1". Bits are packed LSB first, read right to left here.
    config = CodecConfig(predictor="order1", initial_k=0, rice_shift=0)
    samples = np.array([[5], [6], [2]], dtype=np.int16)
    (block,) = encode(samples, config)
    bits = 0b1_0_111_0_11
    assert block == bytes([5, 0, bits & 0xFF, bits >> 8])


def test_first_sample_with_a_codebook_is_a_flag_and_a_code():
    codebook = Codebook(values=(0, 64, 128, 192), base=-32, multiplier=1024, shift=16)
    config = CodecConfig(predictor="order1", initial_k=0, codebook=True, codebook_bits=2)
    # 64 is code 1: flag "0", code "01" (LSB first); then 0 is code 0: u = zigzag(-1) = 1,
    # "1" "0".
    (block,) = encode(np.array([[64], [0]], dtype=np.int16), config, codebook)
    assert block == bytes([0b01010, 0])
    # 65 is off the grid: flag "1", then 65 raw.
    (block,) = encode(np.array([[65]], dtype=np.int16), config, codebook)
    assert int.from_bytes(block, "little") == 1 | 65 << 1


def test_escape_carries_the_raw_sample():
    config = CodecConfig(predictor="order1", initial_k=0, escape_threshold=3)
    samples = np.array([[0], [-2]], dtype=np.int16)   # u = 3 -> q = 3: escape
    (block,) = encode(samples, config)
    word = int.from_bytes(block[2:], "little")
    assert word & 0b111 == 0b111 and (word >> 3) & 0xFFFF == 0xFFFE


def test_white_noise_expands_by_less_than_the_bound():
    samples = codec_stimulus("white", 2000, 4, seed=3)
    for predictor in PREDICTORS:
        config = CodecConfig(block_sweeps=64, predictor=predictor)
        coded = sum(len(b) for b in round_trip(samples, config))
        expansion = coded / samples.nbytes
        print(f"\nwhite noise, {predictor}: {expansion:.4f}x the raw size")
        assert expansion <= config.max_sample_bits / 16
        if predictor in ("adaptive", "order0"):
            assert expansion < 1.1, f"{predictor}: white noise expands {expansion:.3f}x"


def test_blocks_decode_on_their_own():
    samples = codec_stimulus("spikes", 96, 4, seed=5)
    config = CodecConfig(block_sweeps=32)
    blocks = encode(samples, config)
    np.testing.assert_array_equal(decode_block(blocks[1], 4, config), samples[32:64])


def test_a_damaged_block_is_an_error_not_wrong_samples():
    samples = codec_stimulus("spikes", 64, 2, seed=2)
    config = CodecConfig(block_sweeps=64)
    (block,) = encode(samples, config)
    with pytest.raises(CompressedBlockError):
        decode_block(block[:-4], 2, config)
    with pytest.raises(CompressedBlockError):
        decode_block(block + b"\0\0", 2, config)


def test_codebook_maps_gridded_data_and_escapes_what_is_off_the_grid():
    samples = codec_stimulus("gridded-off", 4000, 2, seed=4)
    codebook = learn_codebook(samples)
    assert codebook is not None
    config = CodecConfig(block_sweeps=256, codebook=True)
    _, off_grid = symbols(samples, config, codebook)
    assert 0 < off_grid.sum() < 0.01 * samples.size
    with_book = sum(len(b) for b in round_trip(samples, config, codebook))
    without = sum(len(b) for b in round_trip(samples, CodecConfig(block_sweeps=256)))
    assert with_book < 0.75 * without
    # Any input stays lossless through a codebook it was not learned on.
    round_trip(codec_stimulus("white", 300, 2, seed=1), config, codebook)


def test_no_codebook_for_data_without_a_grid():
    assert learn_codebook(codec_stimulus("white", 3000, 2)) is None
    assert learn_codebook(codec_stimulus("spikes", 3000, 2)) is None


def test_codec_configuration_errors_name_the_fix():
    with pytest.raises(ConfigError, match="block_sweeps"):
        CodecConfig(block_sweeps=0)
    with pytest.raises(ConfigError, match="predictor"):
        CodecConfig(predictor="order9")
    with pytest.raises(ConfigError, match="no codebook"):
        encode(np.zeros((4, 1), np.int16), CodecConfig(codebook=True))
    with pytest.raises(ConfigError, match="codebook_bits"):
        Codebook(values=(0,) * 300, base=0, multiplier=1, shift=0).table(8)


@pytest.mark.skipif(not N1_DATA.is_dir(),
                    reason="N1 recordings not present (../shared/data/n1-dev beside the repo)")
@pytest.mark.parametrize("block_sweeps", [32, 256, 1024, 4096])
def test_n1_recordings_round_trip_and_compress(block_sweeps):
    """Prints the ratio over the N1 set per block length (the cost of independent blocks:
    every N1 file is one channel, so a block of B sweeps is B samples)."""
    from scipy.io import wavfile

    raw = coded = 0
    for path in sorted(N1_DATA.glob("*.wav")):
        samples = wavfile.read(path)[1].astype(np.int16)[:, None]
        codebook = learn_codebook(samples)
        assert codebook is not None, f"{path.name}: no ADC grid found"
        config = CodecConfig(block_sweeps=block_sweeps, codebook=True)
        coded += sum(len(b) for b in round_trip(samples, config, codebook))
        raw += samples.nbytes
    print(f"\nN1, block {block_sweeps} sweeps: {raw / coded:.4f}x over {raw} raw bytes")
    assert raw / coded > (2.8 if block_sweeps < 256 else 3.2)
