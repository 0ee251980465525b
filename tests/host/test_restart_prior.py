"""The v2 coder's restart prior on the host: its file, ``Device.load_prior`` over the command
path (the control model: sim/models/control.py) and the recorder that loads it before
lossless, or refuses what cannot take it before anything is written."""

import json
from dataclasses import replace

import numpy as np
import pytest

from spikeforge.firmware.compression_v2 import (
    CodecV2Config,
    prior_entry_word,
    prior_words,
    restart_tables,
)
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.host.device import DeviceNoControl, RegisterRefused
from spikeforge.host.recorder import Recorder, RecordingModeError
from spikeforge.host.restart_prior import RestartPrior, read_prior, write_prior
from spikeforge.host.sample_files import RecordingFileError

#: Two context tables: a prior of 2 x 45 entries loads in seconds over the model's link.
CODEC = CodecV2Config(enabled=True, sync_blocks=4, block_sweeps=4, contexts=2,
                      restart_prior=True)


def _prior(codec: CodecV2Config = CODEC) -> np.ndarray:
    """A valid prior unlike the initial tables: each row's mass moved toward symbol 0."""
    rows, _ = restart_tables(codec)
    top = rows[:, -1:]
    return np.minimum(rows + top // 8, top) * (np.arange(rows.shape[1]) > 0)


def test_a_prior_file_round_trips_with_its_digest(tmp_path):
    prior = write_prior(tmp_path / "prior.npy", _prior())
    again = read_prior(tmp_path / "prior.npy")
    assert np.array_equal(again.rows, _prior()) and again.sha256 == prior.sha256
    assert len(again.sha256) == 64 and again.facts()["contexts"] == CODEC.contexts
    again.check(CODEC)
    with pytest.raises(ConfigError, match="prior.npy"):
        again.check(replace(CODEC, contexts=3))


def test_a_file_that_is_not_a_prior_is_refused_naming_the_fix(tmp_path):
    with pytest.raises(RecordingFileError, match="learn-prior"):
        read_prior(tmp_path / "missing.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(RecordingFileError, match="not a .npy"):
        read_prior(tmp_path / "text.npy")
    np.save(tmp_path / "floats.npy", _prior().astype(float))
    with pytest.raises(RecordingFileError, match="integer rows"):
        read_prior(tmp_path / "floats.npy")


# -- Device.load_prior ---------------------------------------------------------------------

def test_load_prior_writes_every_entry_between_prior_on_0_and_1(model_device):
    from spikeforge.firmware.registers import register

    prior = _prior()
    fake, device = model_device(SystemConfig(channels=4, codec_v2=CODEC))
    with device:
        device.identify()
        assert device.prior is None
        device.load_prior(prior)
        on, entry = register("PRIOR_ON").address, register("PRIOR_ENTRY").address
        written = [(address, value) for address, value in fake.model.writes
                   if address in (on, entry)]
        words = prior_words(CODEC, prior)
        assert written == [(on, 0), *((entry, w) for w in words), (on, 1)]
        assert len(words) == CODEC.contexts * (prior.shape[1] - 2)
        assert words[1] == prior_entry_word(0, 1, int(prior[0, 2]))
        assert fake.model.bank.values["PRIOR_ON"] == 1
        assert np.array_equal(device.prior, prior)
        # In lossless mode the host refuses before writing anything, and says why.
        device.set_mode("lossless")
        count = len(fake.model.writes)
        with pytest.raises(RegisterRefused, match=r"set_mode\('raw'\)"):
            device.load_prior(prior)
        assert len(fake.model.writes) == count


def test_load_prior_is_refused_without_a_prior_build_or_for_rows_that_do_not_fit(model_device):
    no_prior = SystemConfig(channels=4, codec_v2=replace(CODEC, restart_prior=False))
    fake, device = model_device(no_prior)
    with device:
        device.identify()
        with pytest.raises(RegisterRefused, match="rebuild it with codec_v2 restart_prior=True"):
            device.load_prior(_prior())
    fake, device = model_device(SystemConfig(channels=4, codec_v2=CODEC))
    with device:
        device.identify()
        with pytest.raises(ConfigError, match="cannot load the restart prior.*2 x 47"):
            device.load_prior(_prior()[:1])
        with pytest.raises(ConfigError, match="must rise"):
            device.load_prior(_prior()[:, ::-1].copy())
        assert not fake.model.writes and device.prior is None


# -- the recorder ------------------------------------------------------------------------

def _meta(out) -> dict:
    return json.loads((out / "Record Node 101" / "experiment1" / "recording1" /
                       "spikeforge.json").read_text())


def test_the_recorder_loads_the_prior_before_lossless_and_keeps_its_digest(model_device,
                                                                          tmp_path):
    from spikeforge.firmware.registers import register

    prior = write_prior(tmp_path / "prior.npy", _prior())
    config = SystemConfig(channels=4, codec_v2=CODEC)
    fake, device = model_device(config)
    spf = config.sweeps_per_frame
    with device:
        recorder = Recorder(device, tmp_path / "rec", mode="lossless", prior=prior,
                            duration_s=4 * spf / config.sample_rate_hz)
        recorder.prepare()
        final = recorder.run()
        assert np.array_equal(device.prior, prior.rows)
    assert final.ended == "duration reached"
    # PRIOR_ON=1 is written before the mode becomes lossless
    on, mode = register("PRIOR_ON").address, register("BANDWIDTH_MODE").address
    order = [(a, v) for a, v in fake.model.writes if a in (on, mode)]
    assert order.index((on, 1)) < order.index((mode, 1))
    facts = _meta(tmp_path / "rec")["restart_prior"]
    assert facts == {"source": str(tmp_path / "prior.npy"), "sha256": prior.sha256,
                     "contexts": CODEC.contexts, "loaded": True}


@pytest.mark.parametrize("codec, mode, error, match", [
    (replace(CODEC, restart_prior=False), "lossless", RecordingModeError,
     "rebuild with codec_v2 restart_prior=True"),
    (CODEC, "raw", RecordingModeError, "--mode lossless"),
    (replace(CODEC, contexts=3), "lossless", ConfigError, "3 x 47"),
], ids=["build-without-prior", "raw", "prior-does-not-fit"])
def test_the_recorder_refuses_a_prior_before_anything_is_written(model_device, tmp_path, codec,
                                                                 mode, error, match):
    prior = RestartPrior(_prior(), "prior.npy", "0" * 64)
    fake, device = model_device(SystemConfig(channels=4, codec_v2=codec))
    with device:
        recorder = Recorder(device, tmp_path / "rec", mode=mode, prior=prior)
        with pytest.raises(error, match=match):
            recorder.prepare()
    assert not (tmp_path / "rec").exists() and not fake.model.writes


def test_the_recorder_refuses_a_prior_without_the_control_path(model_device, tmp_path):
    prior = RestartPrior(_prior(), "prior.npy", "0" * 64)
    _, device = model_device(SystemConfig(channels=4, codec_v2=CODEC))
    with device:
        recorder = Recorder(device, tmp_path / "rec", mode="lossless", prior=prior,
                            control=False)
        with pytest.raises(DeviceNoControl, match="restart prior"):
            recorder.prepare()
