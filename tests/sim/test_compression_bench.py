"""The compression benchmark on small synthetic recordings (no data folder needed): the
ratios are real (every codec's output decodes to the input, sizes are what the codecs
produce), and bad inputs are refused with a message that says what to do."""

import json
import zlib

import numpy as np
import pytest
from scipy.io import wavfile

from spikeforge.cli import main
from spikeforge.firmware.compression import CodecConfig, learn_codebook
from spikeforge.host.compression import decode
from spikeforge.sim import compression_bench as cb
from spikeforge.sim.models.compressor import encode

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


def gridded(sweeps: int, channels: int, seed: int = 5) -> np.ndarray:
    """A slow random walk on an irregular grid of ~64-count steps, like the N1 ADC codes."""
    rng = np.random.default_rng(seed)
    codes = np.clip(np.cumsum(rng.integers(-2, 3, (sweeps, channels)), axis=0) + 100, 0, 200)
    grid = np.rint(np.arange(201) * 64.3 - 6400).astype(np.int16)
    return grid[codes]


def test_gateware_coder_round_trips_and_reports_the_bytes_the_model_emits(recordings):
    rows = cb.run_benchmark(recordings, cb.coder_codecs(), progress=lambda _: None)
    config = CodecConfig(enabled=True)
    for recording, row in zip(recordings, rows):
        blocks = encode(recording.samples, config)
        assert row.codecs[cb.CODER].compressed_bytes == sum(map(len, blocks))
        np.testing.assert_array_equal(
            decode(blocks, recording.samples.shape[1], config,
                   sweeps=recording.samples.shape[0]), recording.samples)
        assert row.ratio(cb.CODER) > 1.0
        # The test source has no value grid: the codebook column codes without one.
        assert row.codecs[cb.CODER_CODEBOOK].extra["codebook_values"] == 0
        assert row.ratio(cb.CODER_CODEBOOK) == row.ratio(cb.CODER)


def test_codebook_column_learns_the_grid_and_codes_smaller():
    samples = gridded(2000, 2)
    assert learn_codebook(samples) is not None
    recording = cb.Recording("grid", "gridded", samples, 20_000)
    row = cb.measure(recording, cb.coder_codecs())
    assert row.codecs[cb.CODER_CODEBOOK].extra["codebook_values"] > 100
    assert row.ratio(cb.CODER_CODEBOOK) > row.ratio(cb.CODER) > 1.0


def test_cli_bench_on_a_wav_writes_json_with_every_codec(tmp_path, capsys):
    wavfile.write(tmp_path / "grid.wav", 19_531, gridded(3000, 1)[:, 0])
    out = tmp_path / "result.json"
    assert main(["bench", "compress", "--no-synthetic", str(tmp_path), "--json", str(out),
                 "--target-class", "files"]) == 0
    text = capsys.readouterr().out
    assert "| files: " in text and ("reaches 3.4x" in text or "MISSES 3.4x" in text)
    result = json.loads(out.read_text())
    (recording,) = result["recordings"]
    assert recording["name"] == "grid.wav" and recording["sample_rate_hz"] == 19_531
    assert set(recording["ratio"]) == {"coder", "coder+codebook", "coder-v2", "zlib-9", "lzma-9e",
                                       "zstd-19", "flac-8"}
    assert recording["raw_bytes"] == 6000
    assert result["overall"]["ratio"]["coder+codebook"] == pytest.approx(
        6000 / recording["compressed_bytes"]["coder+codebook"])


def test_spikeinterface_recordings_are_int16_at_the_rhd_lsb():
    pytest.importorskip("spikeinterface")
    (si, *_) = cb.synthetic_recordings(seconds=0.1, channels=2, seeds=(1,), noise_uv=(5.0,))
    assert si.kind.startswith("SpikeInterface") and si.samples.dtype == np.int16
    assert si.samples.shape == (3000, 2) and si.sample_rate_hz == 30_000
    # 5 uV of noise at 0.195 uV/bit is ~26 LSB (robust estimate: spikes excluded).
    centred = si.samples - np.median(si.samples, axis=0)
    assert np.allclose(np.median(np.abs(centred), axis=0) / 0.6745, 5.0 / 0.195, rtol=0.2)


def _write_openephys(folder, samples, rate_hz=30_000):
    stream = folder / "continuous" / "spikeforge-100.acquisition"
    stream.mkdir(parents=True)
    samples.astype("<i2").tofile(stream / "continuous.dat")
    (folder / "structure.oebin").write_text(json.dumps({"continuous": [{
        "folder_name": "spikeforge-100.acquisition/", "sample_rate": float(rate_hz),
        "num_channels": samples.shape[1]}]}))


def test_open_ephys_binary_recordings_are_read_as_spikeforge_record_writes_them(tmp_path):
    rng = np.random.default_rng(4)
    samples = np.cumsum(rng.integers(-20, 21, (3000, 3)), axis=0).astype(np.int16)
    _write_openephys(tmp_path / "rec", samples, 20_000)
    (found,) = cb.file_recordings([tmp_path / "rec"])
    assert np.array_equal(found.samples, samples) and found.sample_rate_hz == 20_000
    row = cb.measure(found, [cb.coder_v2_codec()])
    assert row.ratio(cb.CODER_V2) > 1


@pytest.mark.parametrize("damage", ["no dat", "cut dat", "bad oebin", "missing file",
                                    "empty folder"])
def test_every_input_error_exits_2(tmp_path, capsys, damage):
    rng = np.random.default_rng(4)
    folder = tmp_path / "rec"
    _write_openephys(folder, rng.integers(-9, 9, (100, 2)).astype(np.int16))
    dat = folder / "continuous" / "spikeforge-100.acquisition" / "continuous.dat"
    target = folder
    if damage == "no dat":
        dat.unlink()
    elif damage == "cut dat":
        dat.write_bytes(dat.read_bytes()[:-2])
    elif damage == "bad oebin":
        (folder / "structure.oebin").write_text("{not json")
    elif damage == "missing file":
        target = tmp_path / "nothing.wav"
    else:
        target = tmp_path / "empty"
        target.mkdir()
    assert main(["bench", "compress", str(target), "--no-synthetic"]) == 2


def test_v2_code_weights_come_from_other_recordings_and_round_trip():
    from spikeforge.firmware.compression_v2 import ValueGrid

    grid = ValueGrid.full_scale(10, "toward_zero")
    rng = np.random.default_rng(9)

    def recording(name):
        codes = np.clip(512 + np.cumsum(rng.integers(-3, 4, 4000)) // 2, 0, 1023)
        return cb.Recording(name, "adc", grid.table()[codes].astype(np.int16)[:, None],
                            20_000)

    calibration = cb.calibration_from([recording("a"), recording("b")], "a, b")
    assert calibration is not None and calibration.grid == grid
    row = cb.measure(recording("c"), [cb.coder_v2_codec(calibration=calibration)])
    assert row.codecs[cb.CODER_V2].extra["code_weights"]
    assert row.codecs[cb.CODER_V2].extra["grid"] == grid.to_dict()


def test_sync_blocks_restart_coder_v2_as_a_build_does_and_cost_ratio(tmp_path, capsys):
    """--sync-blocks N: coder-v2 restarts every N blocks (the model a codec_v2 build with
    sync_blocks = N is bit exact with); the recording still decodes exactly (the benchmark
    checks), and the restarts' relearning costs bytes."""
    from spikeforge.firmware.compression_v2 import CodecV2Config
    from spikeforge.sim.models.compressor_v2 import encode_v2

    wavfile.write(tmp_path / "grid.wav", 19_531, gridded(6000, 1)[:, 0])
    sizes = {}
    for sync in (0, 4):
        out = tmp_path / f"sync{sync}.json"
        assert main(["bench", "compress", "--no-synthetic", str(tmp_path), "--json", str(out),
                     "--block-sweeps", "16", "--sync-blocks", str(sync)]) == 0
        (recording,) = json.loads(out.read_text())["recordings"]
        sizes[sync] = recording["compressed_bytes"]["coder-v2"]
    assert "restarted every 4 blocks" in capsys.readouterr().out
    assert sizes[4] > sizes[0]
    # the bytes are the model's with that configuration (the grid's 5 ms sent raw before)
    samples = gridded(6000, 1)
    learn = round(cb.LEARN_SECONDS * 19_531)
    from spikeforge.firmware.compression_v2 import learn_grid
    grid = learn_grid(samples[:learn])
    config = CodecV2Config(enabled=True, block_sweeps=16, sync_blocks=4, grid=grid is not None)
    blocks = encode_v2(samples[learn:], config, grid)
    assert sizes[4] == 2 * learn + sum(map(len, blocks))


def test_restart_prior_is_learned_from_the_calibration_recordings_only(tmp_path, capsys):
    """--restart-prior without --calibrate-from is a usage error (exit 2); with it, the
    prior comes from the calibration recordings, the benchmarked ones decode exactly (the
    benchmark checks) and the note names where the tables come from; --no-code-weights codes
    as the gateware does (the prior, no code weights)."""
    wavfile.write(tmp_path / "grid.wav", 19_531, gridded(6000, 1)[:, 0])
    calib = tmp_path / "calib"
    calib.mkdir()
    wavfile.write(calib / "other.wav", 19_531, gridded(6000, 1, seed=6)[:, 0])
    assert main(["bench", "compress", "--no-synthetic", str(tmp_path / "grid.wav"),
                 "--restart-prior"]) == 2
    assert "--calibrate-from" in capsys.readouterr().err
    assert main(["bench", "compress", "--no-synthetic", str(tmp_path / "grid.wav"),
                 "--calibrate-from", str(calib), "--restart-prior", "--sync-blocks", "4",
                 "--block-sweeps", "16"]) == 0
    assert f"(re)starts from tables learned from {calib}" in capsys.readouterr().out
    assert main(["bench", "compress", "--no-synthetic", str(tmp_path / "grid.wav"),
                 "--calibrate-from", str(calib), "--restart-prior", "--no-code-weights",
                 "--sync-blocks", "4", "--block-sweeps", "16"]) == 0
    out = capsys.readouterr().out
    assert "no code weights" in out and "code weights from" not in out
