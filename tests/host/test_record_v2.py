"""Lossless recording from a v2 build with a value grid: the recording starts raw, the grid
is learned from its first sweeps, loaded over the control path, and the device switched to
lossless at a sync block; the file is every sample, as a raw recording would hold it."""

import json
import subprocess
import sys

import numpy as np
import pytest

from spikeforge.firmware.compression_v2 import (
    CodecV2Config,
    ValueGrid,
    learn_code_weights,
    learn_grid,
)
from spikeforge.firmware.config import SystemConfig
from spikeforge.host.device import RegisterRefused, grid_entry_word
from spikeforge.host.recorder import GridLearning, Recorder, learns_grid

V2_GRID = CodecV2Config(enabled=True, grid=True, sync_blocks=4, block_sweeps=4)


def test_only_lossless_on_a_v2_grid_build_learns_a_grid():
    v2 = SystemConfig(channels=4, codec_v2=V2_GRID)
    assert learns_grid(v2, "lossless")
    assert not learns_grid(v2, "raw") and not learns_grid(v2, None)
    no_grid = SystemConfig(channels=4, codec_v2=CodecV2Config(enabled=True, sync_blocks=4))
    assert not learns_grid(no_grid, "lossless")
    assert not learns_grid(SystemConfig(channels=4), "lossless")


def test_grid_learning_collects_the_first_sweeps_and_finds_the_grid():
    learning = GridLearning(sweeps=100, max_bits=10)
    rng = np.random.default_rng(0)
    assert not learning.take(rng.integers(-12, 13, size=(60, 4)) * 1100)
    assert learning.take(rng.integers(-12, 13, size=(60, 4)) * 1100)
    assert learning.count == 100
    grid = learning.learn()
    assert grid is not None and grid.step == 1100 and grid.bits == 6
    # consecutive integers (the built-in test source) are no grid
    flat = GridLearning(sweeps=10, max_bits=10)
    flat.take(np.arange(40).reshape(10, 4))
    assert flat.learn() is None


def test_grid_entry_words_hold_the_index_and_the_clamped_value():
    assert grid_entry_word(5, -1) == 5 | (0x3FFFF << 12)
    assert grid_entry_word(0x3FF, 32767) == 0x3FF | (32767 << 12)
    assert grid_entry_word(1, 1 << 20) == 1 | (((1 << 17) - 1) << 12)     # clamped
    assert grid_entry_word(2, -(1 << 20)) == 2 | ((1 << 17) << 12)         # -2**17


def test_learn_seconds_must_be_positive():
    with pytest.raises(ValueError, match="learn_seconds"):
        Recorder(None, None, learn_seconds=0)  # type: ignore[arg-type]


def _feed(frames: int, channels: int, step: int, seed: int) -> np.ndarray:
    """A slow random walk with noise on a grid of ``step`` (an ADC whose codes are ``step``
    int16 LSB apart; 0 is on the grid, so the chips' zeros before the file are too)."""
    rng = np.random.default_rng(seed)
    walk = np.clip(rng.integers(-1, 2, size=(frames, channels)).cumsum(0), -8, 8)
    return ((walk + rng.integers(-3, 4, size=(frames, channels))) * step).astype("<i2")


def _learn_prior(tmp_path, board: dict, channels: int, step: int):
    """`spikeforge learn-prior` on another recording of the same ADC (another seed of the
    feed) for the board's coder: the prior a user loads with `record --restart-prior`."""
    other = tmp_path / "earlier.dat"
    _feed(30_000, channels, step, seed=11).tofile(other)
    (tmp_path / "config.json").write_text(json.dumps({"codec_v2": board["codec_v2"]}))
    prior = tmp_path / "prior.npy"
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "learn-prior", str(other), "--channels",
         str(channels), "--sample-rate-hz", str(board["sample_rate_hz"]), "--config",
         str(tmp_path / "config.json"), "--out", str(prior)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return prior


@pytest.mark.sim
@pytest.mark.parametrize(("sync_blocks", "prior", "code_weights"), [
    pytest.param(4, False, False, marks=pytest.mark.slow),
    pytest.param(2, False, False, marks=pytest.mark.slow), (16, True, False),
    (16, False, True)],
    ids=["sync-is-slot", "sync-half-slot", "sync-four-slots-prior",
         "sync-four-slots-code-weights"])
def test_record_lossless_from_a_v2_build_learns_the_grid_and_loses_nothing(
        tmp_path, sync_blocks, prior, code_weights):
    """RHD2132 chips play a file on a value grid (step 1100: a 6-bit table, loaded fast over
    the UART) into a v2 build with grid=True. `spikeforge record --mode lossless
    --learn-seconds 0.05`: raw DATA frames first, then COMPRESSED frames from a sync block on.
    The recording is the file through the chips, sample for sample, with no sweep lost;
    spikeforge.json keeps the grid, which is the one the raw start shows. Whatever the sync
    period (sync_blocks x 4 sweeps: one slot, half a slot, four slots), the framer sends DATA
    slots until its first v2 block, so the switch leaves no hole; the first coded segment
    may repeat the last raw slot's end, kept once. With ``prior`` the build has a restart
    prior (4 context tables, so that its 180 entries load in seconds over the UART), learned
    by `spikeforge learn-prior` from another recording and loaded by `record
    --restart-prior`: the device codes every segment from it, or the host, decoding with
    it, would count the segments damaged. With ``code_weights`` the build weights literal
    frequencies by a device-wide code-weight table: the recorder learns it from the same
    raw start as the grid and loads it with the grid (64 WEIGHT_PAIR writes for the 6-bit
    grid) before lossless; the weighted coding differs from the unweighted one on this feed,
    so a host decoding without the device's table would count the segments damaged."""
    from spikeforge.sim.virtual_board import SampleFeed, board_from_sim_url, expected_recording

    channels, rate_hz, step = 4, 30_000, 1100
    frames = _feed(30_000, channels, step, seed=7)
    flat = tmp_path / "input.i16"
    frames.tofile(flat)
    board = {"channels": channels, "sample_rate_hz": rate_hz, "sweeps_per_frame": 16,
             "identity_interval_frames": 16,
             "codec_v2": {**V2_GRID.to_dict(), "sync_blocks": sync_blocks}}
    with_prior = []
    if prior:
        board["codec_v2"].update(restart_prior=True, contexts=4)
        with_prior = ["--restart-prior", str(_learn_prior(tmp_path, board, channels, step))]
    if code_weights:
        board["codec_v2"]["code_weights"] = True
    (tmp_path / "board.json").write_text(json.dumps(board))
    url = f"sim://{tmp_path / 'board.json'}?from={flat}&channels={channels}&repeat=1"
    out = tmp_path / "rec"
    duration_s = 0.6
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", url, "--mode", "lossless",
         "--learn-seconds", "0.05", "--duration", str(duration_s), "--out", str(out),
         *with_prior],
        capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    stats = result.stderr.split("virtual board: cycles ")[1].split()
    stats = dict(zip(stats[1::2], stats[2::2]))
    first_convert = int(stats["rhd_first_convert_cycle"])

    recording = out / "Record Node 101" / "experiment1" / "recording1"
    folder = recording / "continuous" / "spikeforge-100.acquisition"
    samples = np.fromfile(folder / "continuous.dat", dtype="<i2").reshape(-1, channels)
    numbers = np.load(folder / "sample_numbers.npy")
    meta = json.loads((recording / "spikeforge.json").read_text())
    assert meta["samples_lost"] == 0 and meta["link"]["crc_errors"] == 0
    assert len(samples) == round(duration_s * rate_hz)
    config, _ = board_from_sim_url(url)
    truth = expected_recording(SampleFeed(flat, channels, repeat=True), first_convert, config,
                               numbers)
    np.testing.assert_array_equal(samples, truth)

    learn_sweeps = round(0.05 * rate_hz)
    grid = ValueGrid.from_dict(meta["grid"])
    assert grid == learn_grid(samples[:learn_sweeps], max_bits=V2_GRID.grid_bits)
    assert grid.step == step
    learning = meta["grid_learning"]
    assert meta["mode"] == "lossless" and learning["state"] == "lossless"
    start = learning["lossless_from_sample"]
    assert numbers[0] + learn_sweeps <= start < numbers[-1]
    assert learning["raw_sweeps"] == start - numbers[0]
    # the first coded sweep kept: the chain's first sync block, or the end of the raw slot
    # that overlaps it (the framer decides both at their first sample)
    period = sync_blocks * V2_GRID.block_sweeps
    assert start % min(period, 16) == 0 and start % period <= 16
    # COMPRESSED frames carried everything from the switch on, decoded and none lost
    v2 = meta["v2_stream"]
    assert v2["lost_sweeps"] == 0 and v2["damaged_sweeps"] == 0
    assert v2["decoded_sweeps"] >= numbers[-1] + 1 - start - 2 * 16
    if prior:
        assert meta["restart_prior"]["loaded"] is True
    if code_weights:
        # learned from the raw start the grid came from, loaded (WEIGHTS_ON = 1) and decoded
        # with: every segment decoded (damaged_sweeps 0 above)
        facts = meta["code_weights"]
        weights = np.array(facts["weights"])
        assert facts["loaded"] is True and facts["weighted_codes"] > 0
        assert np.array_equal(weights, learn_code_weights([samples[:learn_sweeps]], grid))
        assert (weights != 64).any()
        assert facts["learned_from"].startswith(f"first {learn_sweeps} sweeps")
    else:
        assert "code_weights" not in meta


# -- Device.load_grid over the command path (the control model: sim/models/control.py) ---------


def test_load_grid_writes_the_registers_and_hands_the_grid_to_the_decoder(model_device):
    from spikeforge.firmware.registers import register

    grid = ValueGrid(bits=6, offset_num=-33000, step_num=1100, step_den=1)
    fake, device = model_device(SystemConfig(channels=4, codec_v2=V2_GRID))
    with device:
        device.identify()
        device.load_grid(grid)
        reciprocal, shift = grid.reciprocal
        values = fake.model.bank.values
        assert (values["GRID_BASE"], values["GRID_RECIPROCAL"], values["GRID_SHIFT"],
                values["GRID_CODE_MAX"]) == (-33000 & 0x3FFFF, reciprocal, shift, 63)
        entry = register("GRID_ENTRY").address
        written = [value for address, value in fake.model.writes if address == entry]
        assert written == [grid_entry_word(k, v) for k, v in enumerate(grid.table())]
        assert device.grid == grid
        # In lossless mode the host refuses before writing anything, and says why.
        device.set_mode("lossless")
        with pytest.raises(RegisterRefused, match="switch to raw first"):
            device.load_grid(grid)


def test_load_grid_is_refused_without_a_grid_or_for_a_wider_one(model_device):
    grid = ValueGrid(bits=6, offset_num=-33000, step_num=1100, step_den=1)
    no_grid = SystemConfig(channels=4, codec_v2=CodecV2Config(enabled=True, sync_blocks=4))
    _, device = model_device(no_grid)
    with device:
        device.identify()
        with pytest.raises(RegisterRefused, match="codec_v2.grid=False"):
            device.load_grid(grid)
    narrow = SystemConfig(channels=4, codec_v2=CodecV2Config(enabled=True, sync_blocks=4,
                                                             grid=True, grid_bits=4))
    _, device = model_device(narrow)
    with device:
        device.identify()
        with pytest.raises(RegisterRefused, match="grid_bits"):
            device.load_grid(grid)


def test_without_a_grid_in_the_first_sweeps_the_recording_stays_raw_and_says_why(
        model_device, tmp_path):
    """The model device's samples count up (every integer): no grid, so the recording goes
    on raw (never lossless without the grid the build needs) and spikeforge.json says why."""
    config = SystemConfig(channels=4, codec_v2=V2_GRID)
    fake, device = model_device(config)
    spf = config.sweeps_per_frame
    with device:
        recorder = Recorder(device, tmp_path / "rec", mode="lossless",
                            learn_seconds=8 * spf / config.sample_rate_hz,
                            duration_s=16 * spf / config.sample_rate_hz)
        recorder.prepare()
        final = recorder.run()
        assert device.mode() == "raw"
    assert final.ended == "duration reached" and final.samples_lost == 0
    meta = json.loads((tmp_path / "rec" / "Record Node 101" / "experiment1" / "recording1" /
                       "spikeforge.json").read_text())
    assert meta["mode"] == "raw" and meta["grid"] is None
    assert meta["grid_learning"]["state"] == "no grid: raw"
    assert "learn_grid needs at least 6" in meta["grid_learning"]["reason"]


class _Capture:
    """A sink keeping what it is given."""

    def __init__(self) -> None:
        self.written: list[tuple[int, np.ndarray]] = []
        self.losses: list[tuple[int, int]] = []

    def write_continuous(self, stream, first_sample, samples) -> None:
        self.written.append((first_sample, samples.copy()))

    def write_loss(self, stream, first_sample, sweeps) -> None:
        self.losses.append((first_sample, sweeps))

    def write_events(self, block) -> None:
        pass

    def flush(self, facts) -> None:
        pass

    def close(self, facts) -> None:
        pass


def test_the_first_coded_segment_that_repeats_the_last_raw_slot_is_kept_once():
    """A sync period shorter than the frame slot: the first COMPRESSED segment may start
    inside the last raw slot; the recording keeps those sweeps once and notes where lossless
    started."""
    from scripted_device import ScriptedDevice

    from spikeforge.host.frames import DataBlock

    config = SystemConfig(channels=4, sweeps_per_frame=16, codec_v2=CodecV2Config(
        enabled=True, grid=True, sync_blocks=2, block_sweeps=4))
    source = np.arange(64 * 4, dtype=np.int16).reshape(64, 4)
    items = [DataBlock(0, 0, source[0:16]), DataBlock(1, 16, source[16:32]),
             # coded from sync sweep 24: 8 sweeps repeat the raw slot 16..31
             DataBlock(3, 24, source[24:32], compressed=True),
             DataBlock(4, 32, source[32:48], compressed=True)]
    capture = _Capture()
    recorder = Recorder(ScriptedDevice(config, []), None, sinks=[capture])
    recorder.prepare()
    recorder.facts = {"grid_learning": {}}
    recorder._take(items[0])
    recorder._take(items[1])
    recorder._switching = True       # as _enter_lossless leaves it
    for item in items[2:]:
        assert recorder._take(item) is None
    got = np.concatenate([samples for _, samples in capture.written])
    np.testing.assert_array_equal(got, source[:48])
    assert capture.losses == []
    assert recorder.facts["grid_learning"] == {"lossless_from_sample": 32, "raw_sweeps": 32}
