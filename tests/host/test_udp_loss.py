"""Loss accounting over UDP: every DATA frame lost on the way (by the network, by a full
receive queue) is a zero-filled, listed loss of the recording when it falls inside it; the
link bench tells losses inside the recording from those in the backlog after its end; and
``status`` / ``spikeforge.json`` / the end line carry the receiver's UDP counters."""

import json
import time

from spikeforge.cli import main
from spikeforge.host.device import Device
from spikeforge.host.recorder import record
from spikeforge.host.udp import UdpTransport, udp_stats
from spikeforge.sim.link_bench import (
    UdpBoard,
    bench_config,
    recording_losses,
    run_step,
    verify_recording,
)


def _link_record(out):
    [found] = list(out.glob("**/spikeforge.json"))
    return json.loads(found.read_text())["link"]


def test_frames_the_network_drops_are_listed_and_zero_filled_exactly(tmp_path):
    # 128 channels, 32 sweeps a frame: 1 s is 937.5 frames, so the recording ends in frame
    # 937. Frames 10, 11, 50 and 200 fall inside it; 939 after its end (frame 940, decoded
    # while the stop command is answered, reveals the gap).
    spf = bench_config(128).sweeps_per_frame
    step = run_step(128, 1.0, tmp_path / "rec", drop_data_frames={10, 11, 50, 200, 939})
    first = step.sender["first_data_slot"] * spf
    assert step.ended == "duration reached", step.line()
    assert step.kernel_drops == step.host_queue_drops == step.crc_errors == 0, step.line()
    assert recording_losses(tmp_path / "rec") == [
        {"first_sample": first + 10 * spf, "samples": 2 * spf},
        {"first_sample": first + 50 * spf, "samples": spf},
        {"first_sample": first + 200 * spf, "samples": spf}]
    assert step.samples_lost == 4 * spf and step.frames_lost_in_recording == 4
    # The decoder's count covers the recording and what it decoded after it: no more.
    assert step.sequence_gaps - 4 == step.frames_lost_after_recording in (0, 1), step.line()
    assert f"lost: 4 frames in the recording ({4 * spf} sweeps zero-filled) + " \
        f"{step.frames_lost_after_recording} after its end" in step.line()
    assert not step.held and step.line().endswith("-> LOST (duration reached)")
    assert verify_recording(tmp_path / "rec", 128) == 30_000
    link = _link_record(tmp_path / "rec")
    assert link["sequence_gaps"] >= 4
    assert link["udp"]["kernel_drops"] == 0 and link["udp"]["host_queue_drops"] == 0
    assert link["udp"]["foreign_datagrams"] == 0 and link["udp"]["receive_buffer_bytes"] > 0
    assert link["udp"]["datagrams"] > 937


class StallOnce:
    """A sink that blocks the recorder for ``stall_s`` at the first block reaching sample
    ``at_sample`` of the recording: the receive thread's queue fills meanwhile. (By sample,
    not by block count: on a loaded machine blocks hold more frames, and a stall at a fixed
    block could fall after the recording's end.)"""

    def __init__(self, at_sample: int, stall_s: float):
        self.at_sample, self.stall_s, self.stalled = at_sample, stall_s, False
        self.start: int | None = None       # sample numbers count device sweeps

    def write_continuous(self, stream, first_sample, samples) -> None:
        if self.start is None:
            self.start = first_sample
        if not self.stalled and first_sample + len(samples) - self.start > self.at_sample:
            self.stalled = True
            time.sleep(self.stall_s)

    def write_loss(self, stream, first_sample, sweeps) -> None:
        pass

    def write_events(self, block) -> None:
        pass

    def flush(self, facts) -> None:
        pass

    def close(self, facts) -> None:
        pass


def test_frames_a_full_receive_queue_drops_are_listed_and_zero_filled(tmp_path):
    config = bench_config(128)            # 8 KiB frames, 937.5 a second
    out = tmp_path / "rec"
    lines = []
    with UdpBoard(config) as board:
        port = UdpTransport.open(board.url, max_queue_bytes=64 * 1024)
        with Device(port, board.url) as device:   # type: ignore[arg-type]
            final = record(device, out, duration_s=1.0, sinks=[StallOnce(10_000, 0.25)],
                           on_status=lambda s: lines.append(s.line()))
            udp = udp_stats(device)
            gaps = device.stats.sequence_gaps
            assert udp is not None
            queue_drops = udp.host_queue_drops
    spf = config.sweeps_per_frame
    losses = recording_losses(out)
    assert final.ended == "duration reached"
    assert queue_drops > 100                  # ~230 frames came during the stall
    lost_frames = sum(loss["samples"] for loss in losses) // spf
    assert all(loss["first_sample"] % spf == 0 and loss["samples"] % spf == 0
               for loss in losses)
    # Every frame the queue dropped is a listed, zero-filled loss (an IDENTITY frame may be
    # among the datagrams dropped: one each 1024 frames).
    assert final.samples_lost == lost_frames * spf == gaps * spf
    assert gaps <= queue_drops <= gaps + 1
    assert verify_recording(out, 128) == 30_000
    assert lines[-1].endswith(f"UDP drops: 0 kernel, {final.queue_drops} queue")
    assert final.queue_drops == queue_drops
    link = _link_record(out)
    assert link["udp"]["host_queue_drops"] == queue_drops
    assert link["sequence_gaps"] == gaps


def test_status_over_udp_shows_the_ethernet_counters_and_the_receivers(capsys):
    with UdpBoard(bench_config(32)) as board:
        assert main(["status", "--port", board.url]) == 0
    out = capsys.readouterr().out
    assert "eth_datagrams_sent" in out and "eth_fcs_errors" in out
    assert "eth_host_ip            127.0.0.1" in out
    for name in ("host udp datagrams", "host udp kernel_drops", "host udp queue_drops",
                 "host udp foreign", "host udp receive_buf"):
        assert name in out, out
    assert "KiB granted" in out


def test_status_of_a_serial_device_shows_no_udp_counters():
    from spikeforge.host.device import DeviceStatus
    from spikeforge.host.frames import LinkStats

    lines = DeviceStatus({"FRAMES_SENT": 3}, LinkStats()).lines()
    assert not any("udp" in line for line in lines)
