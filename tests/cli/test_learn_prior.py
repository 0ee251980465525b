"""`spikeforge learn-prior`: the v2 coder's restart prior learned from the user's recordings
(the bench's reader and learner), written where `record --restart-prior` reads it; bad
input exits 2 naming the problem and the fix."""

import json
import wave
from pathlib import Path

import numpy as np
import pytest

import spikeforge.boards
from spikeforge.cli import main
from spikeforge.firmware.compression_v2 import CodecV2Config, restart_tables
from spikeforge.firmware.config import SystemConfig, read_config_file
from spikeforge.host.errors import ExitCode
from spikeforge.host.restart_prior import read_prior


def _write_wav(path: Path, samples: np.ndarray, rate_hz: int = 30_000) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(samples.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(samples.astype("<i2").tobytes())


def _on_a_grid(sweeps: int, channels: int, seed: int, step: int = 7) -> np.ndarray:
    """A random walk with noise on an ADC grid of ``step`` LSB."""
    rng = np.random.default_rng(seed)
    walk = np.clip(rng.integers(-1, 2, (sweeps, channels)).cumsum(0), -40, 40)
    return (walk + rng.integers(-3, 4, (sweeps, channels))) * step


@pytest.fixture
def recordings(tmp_path) -> Path:
    """A folder of two 0.2 s, 4-channel WAV recordings of the same ADC."""
    folder = tmp_path / "same-adc"
    folder.mkdir()
    for seed in (1, 2):
        _write_wav(folder / f"session-{seed}.wav", _on_a_grid(6000, 4, seed))
    return folder


def _full_v2() -> CodecV2Config:
    path = Path(spikeforge.boards.__file__).parent / "full-v2.json"
    return SystemConfig.from_dict(read_config_file(path)).codec_v2


def test_learn_prior_writes_the_benchs_prior_for_the_v2_build(recordings, tmp_path, capsys):
    from spikeforge.sim.compression_bench import file_recordings, restart_prior_from

    out = tmp_path / "prior.npy"
    assert main(["learn-prior", str(recordings), "--out", str(out)]) == ExitCode.OK
    prior = read_prior(out)
    codec = _full_v2()
    expected = restart_prior_from(file_recordings([recordings]), codec)
    assert np.array_equal(prior.rows, expected)
    rows, count = restart_tables(codec, prior.rows)          # a prior for the build
    assert count > 0 and not np.array_equal(rows, restart_tables(codec)[0])
    said = capsys.readouterr()
    assert "2 recordings" in said.err and "--restart-prior" in said.out


def test_learn_prior_learns_for_the_configuration_given(recordings, tmp_path):
    """--config: the prior has one row per context table of that codec_v2 (a build with
    restart_prior=True is fine: the prior is learned without restarts)."""
    config = tmp_path / "build.json"
    config.write_text(json.dumps({"codec_v2": {"enabled": True, "contexts": 6,
                                               "sync_blocks": 64, "restart_prior": True}}))
    out = tmp_path / "prior.npy"
    assert main(["learn-prior", str(recordings), "--config", str(config),
                 "--out", str(out)]) == ExitCode.OK
    assert read_prior(out).rows.shape == (6, 47)


@pytest.mark.parametrize("case, match", [
    ("missing", "no such recording file"),
    ("flat-without-channels", "--channels"),
    ("too-short", "too short to learn from"),
    ("out-not-npy", "--out must name a .npy file"),
    ("out-folder-missing", "does not exist"),
    ("no-v2-coder", "has no v2 coder"),
])
def test_learn_prior_refuses_bad_input_with_exit_2_naming_the_fix(recordings, tmp_path, capsys,
                                                                  case, match):
    out = tmp_path / "prior.npy"
    args = [str(recordings)]
    if case == "missing":
        args = [str(tmp_path / "nothing-here.wav")]
    elif case == "flat-without-channels":
        flat = tmp_path / "flat.dat"
        _on_a_grid(6000, 4, 3).astype("<i2").tofile(flat)
        args = [str(flat)]
    elif case == "too-short":
        _write_wav(tmp_path / "short.wav", _on_a_grid(50, 4, 4))
        args = [str(tmp_path / "short.wav")]
    elif case == "out-not-npy":
        out = tmp_path / "prior.txt"
    elif case == "out-folder-missing":
        out = tmp_path / "no-folder" / "prior.npy"
    elif case == "no-v2-coder":
        config = tmp_path / "v1.json"
        config.write_text(json.dumps({"channels": 4}))
        args += ["--config", str(config)]
    assert main(["learn-prior", *args, "--out", str(out)]) == ExitCode.USAGE
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_record_refuses_a_restart_prior_that_is_no_prior_before_any_board_starts(tmp_path,
                                                                                capsys):
    (tmp_path / "bad.npy").write_text("not numpy")
    for path, match in ((tmp_path / "missing.npy", "learn-prior"),
                        (tmp_path / "bad.npy", "not a .npy")):
        code = main(["record", "--port", "sim://?channels=4", "--restart-prior", str(path),
                     "--duration", "0.1", "--out", str(tmp_path / "rec")])
        err = capsys.readouterr().err
        assert code == ExitCode.USAGE and match in err
        assert "virtual board" not in err and not (tmp_path / "rec").exists()
