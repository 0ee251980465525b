"""The compression benchmark on small synthetic recordings (no /work/shared needed): the
ratios are real (every codec's output decodes to the input, sizes are what the codecs
produce), and bad inputs are refused with a message that says what to do."""

import zlib

import numpy as np
import pytest

from spikeforge.cli import main
from spikeforge.sim import compression_bench as cb

pytest.importorskip("zstandard")
pytest.importorskip("soundfile")


@pytest.fixture(scope="module")
def recordings():
    return cb.synthetic_recordings(seconds=0.05, channels=3, spikeinterface=False)


@pytest.fixture(scope="module")
def reference_rows(recordings):
    return cb.run_benchmark(recordings, cb.reference_codecs(), progress=lambda _: None)


def test_reference_codecs_decode_to_the_input_and_report_their_true_sizes(recordings,
                                                                          reference_rows):
    for recording, row in zip(recordings, reference_rows):
        raw = recording.samples.astype("<i2").tobytes()
        assert row.raw_bytes == len(raw)
        assert row.codecs["zlib-9"].compressed_bytes == len(zlib.compress(raw, 9))
        for codec in ("zlib-9", "lzma-9e", "zstd-19", "flac-8"):
            assert 1.0 < row.ratio(codec) < 8.0, (recording.name, codec)


def test_flac_codes_more_than_eight_channels_in_groups():
    rng = np.random.default_rng(3)
    samples = np.cumsum(rng.integers(-20, 21, (500, 11)), axis=0).astype(np.int16)
    flac = [c for c in cb.reference_codecs() if c.name == "flac-8"][0]
    recording = cb.Recording("wide", "test", samples, 30_000)
    streams = flac.encode(samples, recording)
    assert len(streams) == 2
    np.testing.assert_array_equal(flac.decode(streams, samples), samples)


def test_a_codec_that_does_not_round_trip_is_caught(recordings):
    lossy = cb.Codec("lossy", lambda s, _r: s.copy(), lambda s: s.nbytes,
                     lambda s, like: (s >> 1) << 1)
    with pytest.raises(cb.RoundTripError, match="lossy did not reproduce .* first difference"):
        cb.measure(recordings[0], [lossy])


def test_summary_ratios_are_byte_sums_not_mean_ratios(reference_rows):
    per_class, overall = cb.summarise(reference_rows)
    total_raw = sum(r.raw_bytes for r in reference_rows)
    total_zstd = sum(r.codecs["zstd-19"].compressed_bytes for r in reference_rows)
    assert overall.ratio("zstd-19") == pytest.approx(total_raw / total_zstd)
    assert [s.kind for s in per_class] == ["test source"]


def test_stacking_mono_recordings_cuts_to_the_shortest():
    a = cb.Recording("a", "files: x", np.arange(10, dtype=np.int16)[:, None], 1000)
    b = cb.Recording("b", "files: x", np.arange(7, dtype=np.int16)[:, None], 1000)
    stacked = cb.stack_recordings([a, b])
    assert stacked.samples.shape == (7, 2) and stacked.kind == "files: x (stacked)"
    assert cb.stack_recordings([a]) is None


@pytest.mark.parametrize("name, content, extra, message", [
    ("rec.xyz", b"\x00\x00", [], "unknown recording file type '.xyz'"),
    ("rec.dat", b"\x00" * 7, ["--channels", "1"], "odd number, so it is not int16"),
    ("rec.dat", b"\x00" * 8, [], "give it with --channels N"),
])
def test_cli_refuses_bad_recording_files(tmp_path, capsys, name, content, extra, message):
    (tmp_path / name).write_bytes(content)
    assert main(["bench", "compress", "--no-synthetic", str(tmp_path / name), *extra]) == 2
    assert message in capsys.readouterr().err
