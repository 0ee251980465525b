"""Reading recordings from WAV and flat int16 files, and the messages for files we cannot
read."""

import numpy as np
import pytest
from scipy.io import wavfile

from spikeforge.host.sample_files import RecordingFileError, read_sample_file, read_sample_files


def samples(sweeps: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32768, (sweeps, channels)).astype(
        np.int16)


def test_mono_and_multichannel_wav_come_back_as_sweeps_by_channels(tmp_path):
    mono, multi = samples(100, 1), samples(50, 3, seed=1)
    wavfile.write(tmp_path / "a.wav", 19_531, mono[:, 0])
    wavfile.write(tmp_path / "b.WAV", 30_000, multi)
    a, b = read_sample_files([tmp_path])
    assert a.name == "a.wav" and a.sample_rate_hz == 19_531
    np.testing.assert_array_equal(a.samples, mono)
    assert b.channels == 3 and b.sample_rate_hz == 30_000
    np.testing.assert_array_equal(b.samples, multi)


def test_flat_int16_is_interleaved_channel_fastest(tmp_path):
    data = samples(40, 4)
    data.astype("<i2").tofile(tmp_path / "rec.dat")
    f = read_sample_file(tmp_path / "rec.dat", channels=4, sample_rate_hz=20_000)
    np.testing.assert_array_equal(f.samples, data)
    assert f.sample_rate_hz == 20_000


def test_flat_file_without_channels_says_to_give_them(tmp_path):
    samples(10, 2).tofile(tmp_path / "rec.bin")
    with pytest.raises(RecordingFileError, match="give it with --channels N"):
        read_sample_file(tmp_path / "rec.bin")


def test_odd_byte_count_is_not_int16(tmp_path):
    (tmp_path / "rec.raw").write_bytes(b"\x00" * 11)
    with pytest.raises(RecordingFileError, match="odd number, so it is not int16"):
        read_sample_file(tmp_path / "rec.raw", channels=1)


def test_sample_count_that_is_not_whole_sweeps_names_the_divisors(tmp_path):
    samples(5, 2).tofile(tmp_path / "rec.dat")      # 10 samples
    with pytest.raises(RecordingFileError, match=r"not a whole number of sweeps of 3 .*1, 2, 5"):
        read_sample_file(tmp_path / "rec.dat", channels=3)


def test_unknown_file_type_lists_the_known_ones(tmp_path):
    (tmp_path / "rec.mp3").write_bytes(b"ID3")
    with pytest.raises(RecordingFileError, match=r"unknown recording file type '.mp3'.*WAV"):
        read_sample_file(tmp_path / "rec.mp3")


def test_float_wav_is_refused_with_a_conversion_hint(tmp_path):
    wavfile.write(tmp_path / "f.wav", 30_000, np.zeros(10, np.float32))
    with pytest.raises(RecordingFileError, match="float32 samples.*16-bit PCM WAV"):
        read_sample_file(tmp_path / "f.wav")


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(RecordingFileError, match="no such recording file"):
        read_sample_file(tmp_path / "nope.wav")
    with pytest.raises(RecordingFileError, match="holds no recording files"):
        read_sample_files([tmp_path])
