"""The v2 coder's golden model and host decoder: exact round trips on friendly and
adversarial inputs, bounded expansion, and (where the N1 data is present) the N1 ratio."""

from pathlib import Path

import numpy as np
import pytest

from spikeforge.firmware import compression_v2 as v2
from spikeforge.firmware.compression import learn_codebook
from spikeforge.firmware.compression_v2 import CodecV2Config, worst_case_bits_v2
from spikeforge.host.compression import decode_v2
from spikeforge.sim.models.compressor_v2 import encode_v2, encode_v2_stream

#: The N1 development files, found next to the repository, never by an absolute path.
N1 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "n1-dev"


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.integers(-6, 7, (3000, 3)), axis=0)
    return {
        "white noise": rng.integers(-32768, 32768, (500, 4)).astype(np.int16),
        "alternating rails": np.tile(np.array([[-32768], [32767]], np.int16), (200, 3)),
        "steps": np.repeat(rng.integers(-32768, 32768, (20, 2)), 37, axis=0).astype(np.int16),
        "random walk": np.clip(walk, -32768, 32767).astype(np.int16),
        "silence": np.zeros((333, 1), np.int16),
        "one channel": np.clip(walk[:, :1] * 50, -32768, 32767).astype(np.int16),
    }


@pytest.mark.parametrize("name", list(_inputs()))
@pytest.mark.parametrize("config", [CodecV2Config(enabled=True),
                                    CodecV2Config(enabled=True, block_sweeps=5, sync_blocks=3,
                                                  taps=2, mu=3)])
def test_round_trip_is_exact(name: str, config: CodecV2Config) -> None:
    samples = _inputs()[name]
    blocks = encode_v2(samples, config)
    back = decode_v2(blocks, samples.shape[1], config, sweeps=samples.shape[0])
    assert np.array_equal(back, samples)


@pytest.mark.parametrize("name", list(_inputs()))
def test_no_block_expands_past_the_worst_case(name: str) -> None:
    samples = _inputs()[name]
    config = CodecV2Config(enabled=True)
    _, ends, _ = encode_v2_stream(samples, config)
    sizes = np.diff(np.concatenate([[0], ends]))
    bound = worst_case_bits_v2(samples.shape[1], config.block_sweeps) // 8 + 5  # + flush
    assert sizes.max() <= bound


def test_incompressible_blocks_go_verbatim() -> None:
    _, _, verbatim = encode_v2_stream(_inputs()["white noise"], CodecV2Config(enabled=True))
    assert verbatim.mean() > 0.9


def test_decoder_constants_are_the_contract() -> None:
    from spikeforge.host import compression as host

    assert (host._V2_SYMBOLS, host._V2_ESCAPE, host._V2_LITERALS) == (
        v2.SYMBOLS, v2.ESCAPE, v2.LITERALS)


def test_a_codebook_round_trips_with_off_grid_samples() -> None:
    rng = np.random.default_rng(3)
    grid = np.round(np.arange(-200, 200) * 64.06).astype(np.int16)
    samples = grid[np.clip(200 + np.cumsum(rng.integers(-3, 4, 4000)), 0, 399)][:, None]
    book = learn_codebook(samples[:1000])
    assert book is not None
    samples = samples.copy()
    samples[::97, 0] += 1                       # off the grid
    config = CodecV2Config(enabled=True, codebook=True)
    blocks = encode_v2(samples, config, book)
    assert np.array_equal(decode_v2(blocks, 1, config, book, sweeps=len(samples)), samples)


@pytest.mark.skipif(not N1.is_dir(), reason="N1 data not found next to the repository "
                    "(../shared/data/n1-dev); the N1 check needs it")
def test_n1_round_trip_and_ratio() -> None:
    import soundfile

    raw = coded = 0
    for path in sorted(N1.glob("*.wav"))[:4]:
        samples = soundfile.read(path, dtype="int16", always_2d=True)[0]
        book = learn_codebook(samples)
        config = CodecV2Config(enabled=True, codebook=True)
        blocks = encode_v2(samples, config, book)
        assert np.array_equal(decode_v2(blocks, 1, config, book, sweeps=len(samples)), samples)
        raw += samples.size * 2
        coded += sum(map(len, blocks))
    assert raw / coded > 3.3
