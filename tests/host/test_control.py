"""The host's control path against a device made of the command decoder's golden model: a
TCP server that streams frames and answers commands as the gateware does, and can lose or
corrupt replies to exercise the host's retries."""

import select
import socket
import threading
import time

import numpy as np
import pytest

from spikeforge.firmware.config import DetectorConfig, SystemConfig
from spikeforge.firmware.registers import REGISTERS, register
from spikeforge.firmware.wire import FrameType, build_frame, encode_identity
from spikeforge.host.device import ChipFound, DeviceNoControl, RegisterRefused
from spikeforge.host.frames import DataBlock
from spikeforge.sim.models.control import CommandDecoderModel


class ModelDevice:
    """Streams an IDENTITY frame and DATA frames; answers commands with the model. The first
    ``lose`` replies are not sent, the next ``corrupt`` are sent with a flipped bit."""

    def __init__(self, config: SystemConfig, *, lose: int = 0, corrupt: int = 0,
                 answers: bool = True):
        self.config = config
        self.model = CommandDecoderModel(
            config, status={r.name: 0 for r in REGISTERS if r.access == "status"})
        self.lose, self.corrupt, self.answers = lose, corrupt, answers
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        client, _ = self.server.accept()
        seq = 0
        with client:
            while not self.stop.is_set():
                if seq % 16 == 0:   # as identity_interval_frames does on the device
                    client.sendall(build_frame(FrameType.IDENTITY, seq // 16,
                                               encode_identity(self.config)))
                payload = np.full(self.config.frame_samples, seq, "<i2").tobytes()
                # LFP: in mode events+lfp the slots carry LFP frames instead of DATA
                lfp = self.model.bank.values.get("BANDWIDTH_MODE") == 3
                try:
                    client.sendall(build_frame(FrameType.LFP if lfp else FrameType.DATA, seq,
                                               payload))
                except OSError:
                    return
                seq += 1
                if not select.select([client], [], [], 0.005)[0]:
                    continue
                try:
                    data = client.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                if not self.answers:
                    continue
                for reply in self.model.feed(data):
                    if self.lose:
                        self.lose -= 1
                        continue
                    if self.corrupt:
                        self.corrupt -= 1
                        reply = reply[:12] + bytes([reply[12] ^ 0x10]) + reply[13:]
                    try:
                        client.sendall(reply)
                    except OSError:
                        return

    def close(self) -> None:
        self.stop.set()
        self.server.close()


def test_registers_read_and_write_through_commands(model_device):
    fake, device = model_device()
    with device:
        assert device.identify().channels == 4
        assert device.read_register("CHANNELS") == 4
        assert device.write_register("DETECT_DEAD_SAMPLES", 12) == 12
        assert fake.model.bank.values["DETECT_DEAD_SAMPLES"] == 12
        device.stop()
        device.start()
        assert [w[1] for w in fake.model.writes if w[0] == 0x10] == [0, 1]
        status = device.status().registers
        # The 4 commands above, start()'s question whether the stream is encrypted and its
        # read of SWEEPS (a restart after stop()), then status() reads its registers in
        # order, this one too.
        assert status["COMMANDS_EXECUTED"] == 2 + 4 + list(status).index("COMMANDS_EXECUTED") + 1
        assert status["COMMAND_ERRORS"] == 0


def test_a_lost_reply_is_retried_and_the_write_applies_once(model_device):
    fake, device = model_device(lose=2)
    with device:
        device.identify()
        assert device.write_register("DETECT_K", 99, timeout_s=0.05) == 99
        assert fake.model.writes == [(register("DETECT_K").address, 99)]
        assert fake.model.counters["COMMANDS_EXECUTED"] == 1


def test_a_corrupt_reply_is_counted_and_retried(model_device):
    fake, device = model_device(corrupt=1)
    with device:
        device.identify()
        assert device.read_register("SAMPLE_RATE_HZ", timeout_s=0.05) == 30_000
        assert device.stats.crc_errors >= 1


def test_frames_that_arrive_during_a_command_are_kept(model_device):
    _, device = model_device()
    with device:
        device.identify()
        for _ in range(5):
            device.read_register("CLOCK_HZ")
        seqs = []
        for item in device.items():
            if isinstance(item, DataBlock):
                seqs.append(item.seq)
            if len(seqs) == 20:
                break
        assert seqs == list(range(seqs[0], seqs[0] + 20)), "frames lost while commanding"
        assert device.stats.sequence_gaps == 0


def test_configure_writes_the_detector_registers(model_device):
    config = SystemConfig(channels=3, detector=DetectorConfig(enabled=True))
    fake, device = model_device(config)
    with device:
        device.identify()
        device.configure(polarity="both", dead_samples=20, threshold_k=4.5, neo=True)
        values = fake.model.bank.values
        assert values["DETECT_POLARITY"] == 3 and values["DETECT_DEAD_SAMPLES"] == 20
        assert values["DETECT_NEO"] == 1
        k_writes = [(c, k) for (a, c), (b, k) in zip(fake.model.writes, fake.model.writes[1:])
                    if a == register("DETECT_K_CHANNEL").address
                    and b == register("DETECT_K").address]
        assert k_writes == [(0, 72), (1, 72), (2, 72)]
        with pytest.raises(RegisterRefused, match="polarity must be one of"):
            device.configure(polarity="sideways")


def test_a_register_the_build_lacks_is_refused_clearly(model_device):
    _, device = model_device()
    with device:
        device.identify()
        with pytest.raises(RegisterRefused, match="no register RHD_CHIPS"):
            device.read_register("RHD_CHIPS")


def test_a_device_that_does_not_answer_says_so(model_device):
    _, device = model_device(answers=False)
    with device:
        device.identify()
        started = time.monotonic()
        assert not device.supports_control(timeout_s=0.05)
        with pytest.raises(DeviceNoControl, match="did not answer a command"):
            device.read_register("CHANNELS", timeout_s=0.05, retries=1)
        assert time.monotonic() - started < 2


def test_a_build_without_the_control_path_is_named_without_waiting(model_device):
    config = SystemConfig(channels=1, baud=12_000_000)   # 1 cycle per bit
    _, device = model_device(config, answers=False)
    with device:
        device.identify()
        with pytest.raises(DeviceNoControl, match="without the control path.*at least 3"):
            device.read_register("CHANNELS")


def test_identify_reports_the_rhd_chips_the_device_found(model_device):
    config = SystemConfig(source="rhd", channels=32, sample_rate_hz=8000, sweeps_per_frame=2)
    fake, device = model_device(config)
    # Line 0: an RHD2132 (ID 1) at delay 3; line 1: an RHD2164 (ID 4) at delay 5.
    fake.model.status.update(RHD_CHIPS=0x0401, RHD_FOUND_DELAYS=1 << 31 | 5 << 4 | 3)
    with device:
        assert device.identify() == config
        assert device.chips_found == [ChipFound(0, "RHD2132", 32, 3),
                                      ChipFound(1, "RHD2164", 64, 5)]
        fake.model.status.update(RHD_FOUND_DELAYS=0)   # calibration not finished
        assert device.chips() == []


def test_configure_mode_switches_and_status_shows_it(model_device):
    from spikeforge.firmware.compression import CodecConfig

    config = SystemConfig(channels=4, codec=CodecConfig(enabled=True, block_sweeps=8))
    fake, device = model_device(config)
    with device:
        device.identify()
        assert device.mode() == "raw"
        device.configure(mode="lossless")
        assert fake.model.bank.values["BANDWIDTH_MODE"] == 1
        assert device.mode() == "lossless"
        assert "bandwidth mode         lossless" in device.status().lines()
        device.configure(mode="raw")
        assert fake.model.bank.values["BANDWIDTH_MODE"] == 0
        with pytest.raises(RegisterRefused, match="mode must be one of"):
            device.configure(mode="zip")


def test_a_mode_the_build_lacks_is_refused_naming_the_config_field(model_device):
    fake, device = model_device(SystemConfig(channels=4))
    with device:
        device.identify()
        with pytest.raises(RegisterRefused, match="no register BANDWIDTH_MODES"):
            device.read_register("BANDWIDTH_MODES")      # raw only: the identity says so
        with pytest.raises(RegisterRefused, match=r"stays in 'raw'.*SystemConfig\.codec"):
            device.configure(mode="lossless")
        with pytest.raises(RegisterRefused, match=r"SystemConfig\.detector"):
            device.set_mode("events")
        device.set_mode("raw")
        assert device.mode() == "raw"
        # A raw-only build spends no logic on a mode register.
        assert "BANDWIDTH_MODE" not in fake.model.bank.values
        assert not [w for w in fake.model.writes if w[0] == register("BANDWIDTH_MODE").address]


def test_events_plus_lfp_is_refused_by_a_build_without_lfp(model_device):
    _, device = model_device(SystemConfig(channels=4, detector=DetectorConfig(enabled=True)))
    with device:
        device.identify()
        assert device.read_register("BANDWIDTH_MODES") == 0b0101
        device.set_mode("events")
        with pytest.raises(RegisterRefused, match="LFP"):
            device.set_mode("events+lfp")
        assert device.mode() == "events"


def test_record_sets_the_mode_it_is_asked_for(model_device, tmp_path):
    import json

    from spikeforge.firmware.compression import CodecConfig
    from spikeforge.host.recorder import RecordingModeError, record

    config = SystemConfig(channels=4, codec=CodecConfig(enabled=True, block_sweeps=8))
    fake, device = model_device(config)
    with device:
        with pytest.raises(RecordingModeError, match="raw, lossless"):
            record(device, tmp_path / "events", duration_s=0.01, mode="events")
        final = record(device, tmp_path / "rec", duration_s=0.01, mode="lossless")
        assert final.ended == "duration reached"
        assert fake.model.bank.values["BANDWIDTH_MODE"] == 1
    meta = json.loads(next((tmp_path / "rec").rglob("spikeforge.json")).read_text())
    assert meta["mode"] == "lossless"


# -- codebook loading (codec.codebook builds; docs/compression.md) ------------------------------


def _codebook_build() -> SystemConfig:
    from spikeforge.firmware.compression import CodecConfig

    return SystemConfig(channels=4, codec=CodecConfig(enabled=True, block_sweeps=8,
                                                      codebook=True, codebook_bits=2))


def test_load_codebook_writes_verifies_and_hands_the_table_to_the_decoder(model_device):
    from spikeforge.firmware.compression import Codebook

    book = Codebook(values=(-7, -32768, 32767), base=-7, multiplier=3 << 14, shift=16)
    fake, device = model_device(_codebook_build())
    with device:
        device.identify()
        device.load_codebook(book)
        table = [int(v) & 0xFFFF for v in book.table(2)]
        assert fake.model.codebook_table == table
        values = fake.model.bank.values
        assert (values["CODEBOOK_BASE"], values["CODEBOOK_MULTIPLIER"],
                values["CODEBOOK_SHIFT"]) == (-7 & 0xFFFF, 3 << 14, 16)
        assert device.codebook == book
        # In lossless mode the device refuses codebook writes, and the host says why.
        device.set_mode("lossless")
        with pytest.raises(RegisterRefused, match="switch to raw first"):
            device.load_codebook(Codebook(values=(1, 2), base=1, multiplier=1, shift=0))
        assert device.write_register("CODEBOOK_SHIFT", 3) == 16
        assert fake.model.codebook_table == table


def test_load_codebook_is_refused_by_a_build_without_one(model_device):
    from spikeforge.firmware.compression import Codebook, CodecConfig

    book = Codebook(values=(0, 1), base=0, multiplier=1, shift=0)
    _, device = model_device(SystemConfig(channels=4, codec=CodecConfig(enabled=True)))
    with device:
        device.identify()
        with pytest.raises(RegisterRefused, match="codec.codebook=False"):
            device.load_codebook(book)
    _, device = model_device(_codebook_build())
    with device:
        device.identify()
        with pytest.raises(RegisterRefused, match="codebook_bits=2"):
            device.load_codebook(Codebook(values=tuple(range(5)), base=0, multiplier=1,
                                          shift=0))


def test_record_codebook_from_loads_it_and_records_lossless(tmp_path, capsys):
    import json

    from spikeforge.cli import main
    from spikeforge.firmware.compression import Codebook

    book = Codebook(values=(-64, 0, 64), base=-64, multiplier=1 << 10, shift=16)
    path = tmp_path / "book.json"
    path.write_text(json.dumps(book.to_dict()))
    fake = ModelDevice(_codebook_build())      # the CLI opens the port itself
    try:
        assert main(["record", "--port", fake.url, "--out", str(tmp_path / "rec"),
                     "--duration", "0.01", "--codebook-from", str(path)]) == 0
        assert fake.model.codebook_table == [int(v) & 0xFFFF for v in book.table(2)]
        assert fake.model.bank.values["BANDWIDTH_MODE"] == 1
    finally:
        fake.close()
    assert "loading the codebook: 3 values" in capsys.readouterr().err
    meta = json.loads(next((tmp_path / "rec").rglob("spikeforge.json")).read_text())
    assert meta["mode"] == "lossless" and Codebook.from_dict(meta["codebook"]) == book


def test_record_in_events_plus_lfp_sets_the_mode_and_records_the_lfp_stream(model_device,
                                                                             tmp_path):
    import json

    from spikeforge.firmware.config import DecimatorConfig
    from spikeforge.host.recorder import record

    config = SystemConfig(channels=4, detector=DetectorConfig(enabled=True),
                          lfp=DecimatorConfig(factor=30, order=3))
    fake, device = model_device(config)
    with device:
        final = record(device, tmp_path / "rec", duration_s=0.064, mode="events+lfp")
        assert final.ended == "duration reached"
        assert fake.model.bank.values["BANDWIDTH_MODE"] == 3
    recording = next((tmp_path / "rec").rglob("spikeforge.json")).parent
    meta = json.loads((recording / "spikeforge.json").read_text())
    assert meta["mode"] == "events+lfp" and meta["lfp_sweeps"] == 64
    samples = np.fromfile(recording / "continuous" / "spikeforge-100.lfp" / "continuous.dat",
                          dtype="<i2").reshape(-1, 4)
    numbers = np.load(recording / "continuous" / "spikeforge-100.lfp" / "sample_numbers.npy")
    # The model device fills slot s with the value s: 32 decimated sweeps per LFP frame.
    np.testing.assert_array_equal(samples[:, 0], numbers // 32)
