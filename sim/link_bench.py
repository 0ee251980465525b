"""``spikeforge bench link``: how fast the host receives a Gigabit Ethernet board and records
it, measured on loopback.

A sender process plays the board (:class:`UdpBoard`): it answers the control path with the
golden command decoder (:class:`~spikeforge.sim.models.control.CommandDecoderModel`), learns
the host from its first valid command (as the gateware does, docs in
:mod:`spikeforge.firmware.ethernet`), and then sends the device's wire frames — IDENTITY
frames every ``identity_interval_frames`` slots (and one at once when it learns the host),
DATA frames of a raw-mode configuration while ``STREAM_ENABLE`` is set — one frame per UDP
datagram, from its data socket, paced to the sample clock. Frames are built with
:func:`spikeforge.firmware.wire.build_frame`; their samples are random int16 from a seed,
``FRAME_PATTERNS`` distinct payloads used in turn, so the recording can be checked sample
by sample (:func:`verify_recording`).

The receiver is the real one: ``Device.open("udp://127.0.0.1:PORT")`` and
:func:`spikeforge.host.recorder.record` writing an Open Ephys recording, in this process
(pinned to one core with ``--pin``, the default; the sender to another).

Rates are counted in channels at 30 kS/s raw. Up to :data:`MAX_CHANNELS` (1024) that is the
configuration's channel count; above it the 1024-channel stream is replayed faster than real
time, ``N / 1024`` times (the same bytes per second as N channels would be; the recording's
duration is device time, so it covers ``duration * N / 1024`` s of samples).

The search runs each rate of a ladder for ``--duration`` wall seconds and stops at the first
that loses anything (a sequence gap, a kernel or receive-queue drop, a zero-filled sweep —
sweeps the Open Ephys writer thread's full queue refused among them, shown apart as ``sweeps
refused by the writer`` —, a CRC error), that the sender could not offer, or whose
recording ended more than 5 % late (the receiver and writer fell behind and lived on the
receive queue, which a longer run would overflow); the last line reads
``held: N channels at 30 kS/s raw (X Mbit/s), 0 lost``. X counts the UDP payload (the wire
frames) of the offered stream.

Where losses are counted. The recording ends when it holds its duration of device time; a
receiver that fell behind still has a backlog then (the receive queue, the socket buffer),
and the stop command's reply waits behind it, so the decoder goes on decoding past the
recording's end. Frames dropped in that backlog (kernel or queue drops) are sequence gaps
of the decoder but not losses of the recording, which had ended before them. Each step's
line therefore splits the frames lost: ``in the recording`` (from its loss list, each one
zero-filled) ``+ after its end`` (the decoder's gaps beyond them). The kernel and queue
drops are the socket's counts over the whole step, the backlog included (a queue drop that
was never decoded shows in no gap). Any of them fails the step. (A 2048-channel step once
reported 600 gaps with no sweep zero-filled: the recorder zero-fills every gap inside
the recording, tests/host/test_udp_loss.py, so they were in the backlog after it.)
"""

import argparse
import json
import multiprocessing
import multiprocessing.connection
import os
import resource
import select
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from spikeforge.firmware.config import MAX_CHANNELS, MAX_PAYLOAD_BYTES, SystemConfig
from spikeforge.firmware.registers import REGISTERS
from spikeforge.firmware.wire import (
    DATA_FRAME_OVERHEAD_BYTES,
    FrameType,
    build_frame,
    encode_identity,
)

__all__ = ["BenchStep", "UdpBoard", "bench_config", "expected_samples", "verify_recording",
           "recording_losses", "frames_lost",
           "run_step", "main", "run", "add_arguments", "LADDER", "FRAME_PATTERNS"]

SAMPLE_RATE_HZ = 30_000
#: Distinct DATA payloads the sender cycles through (frame seq % FRAME_PATTERNS).
FRAME_PATTERNS = 8
#: Channel counts the search tries, in order (capped by --max-channels).
LADDER = (256, 512, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
MAX_DURATION_S = 600.0
#: Sender socket send buffer (asked; the OS caps it).
SEND_BUFFER_BYTES = 8 * 2**20


def bench_config(channels: int) -> SystemConfig:
    """The raw-mode configuration replayed for ``channels`` (at most 1024; more are
    replayed faster): as many sweeps per frame as one frame (and so one datagram) holds,
    up to 32; a clock fast enough for 1024 channels at 30 kS/s."""
    channels = min(channels, MAX_CHANNELS)
    sweeps = min(32, MAX_PAYLOAD_BYTES // (2 * channels))
    buffer = 1 << (2 * sweeps * channels - 1).bit_length()
    return SystemConfig(channels=channels, sample_rate_hz=SAMPLE_RATE_HZ,
                        clock_hz=60_000_000, baud=3_000_000, sweeps_per_frame=sweeps,
                        link_buffer_samples=max(buffer, 2048), link="ethernet")


def frame_payloads(config: SystemConfig, seed: int) -> np.ndarray:
    """The FRAME_PATTERNS DATA payloads, shape (patterns, sweeps_per_frame, channels)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-32768, 32768, (FRAME_PATTERNS, config.sweeps_per_frame,
                                        config.channels), dtype=np.int16)


def expected_samples(config: SystemConfig, seed: int, first_sample: int,
                     sweeps: int) -> np.ndarray:
    """What sweeps ``first_sample ..`` hold when nothing was lost."""
    payloads = frame_payloads(config, seed)
    spf = config.sweeps_per_frame
    sweep = np.arange(first_sample, first_sample + sweeps)
    return payloads[(sweep // spf) % FRAME_PATTERNS, sweep % spf]


def _board_status(config: SystemConfig) -> dict[str, int]:
    status = {r.name: 0 for r in REGISTERS if r.access == "status"}
    status["ENABLED_CHANNELS"] = config.channels
    status["CHANNEL_MASK_IN_FORCE"] = 0xFFFFFFFF
    return status


def _serve(config: SystemConfig, speed: float, seed: int, conn, max_run_s: float,
           drop_data_frames: frozenset[int] = frozenset()) -> None:
    """The sender process: plays the board until told to stop (or ``max_run_s``).
    ``drop_data_frames``: DATA frames (0: the first after ``STREAM_ENABLE``) it does not
    send, as a lossy network would lose them."""
    from spikeforge.sim.models.control import CommandDecoderModel

    control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    control.bind(("127.0.0.1", 0))
    data = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    data.bind(("127.0.0.1", 0))
    try:
        data.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    except OSError:
        pass
    control.setblocking(False)
    conn.send(control.getsockname()[1])
    model = CommandDecoderModel(config, status=_board_status(config))
    payloads = [p.tobytes() for p in frame_payloads(config, seed)]
    identity = encode_identity(config)
    spf = config.sweeps_per_frame
    slot_period_s = spf / (config.sample_rate_hz * speed)
    host: tuple[str, int] | None = None
    next_slot = next_identity = identity_count = 0
    sent = data_sent = send_errors = data_index = data_dropped = 0
    first_data_slot: int | None = None
    start = time.monotonic()
    deadline = start + max_run_s
    stop = False
    while not stop:
        # -- the control path: one command per datagram (any leftover is an error) ------
        while True:
            try:
                command, source = control.recvfrom(2048)
            except (BlockingIOError, ConnectionRefusedError):
                break
            replies = model.feed(command)
            model.timeout()
            if replies and host is None:
                host = source
                model.status["ETH_HOST_IP"] = int.from_bytes(socket.inet_aton(source[0]),
                                                             "big")
                next_identity = next_slot   # announce at once
            for reply in replies:
                control.sendto(reply, source)
        # -- the slots due by now ---------------------------------------------------------
        now = time.monotonic()
        due = int((now - start) / slot_period_s)
        if host is None:
            next_slot = due + 1     # nobody to send to: the device counts them dropped
        else:
            enabled = model.bank.values.get("STREAM_ENABLE", 0)
            while next_slot <= due:
                try:
                    if next_slot >= next_identity:
                        data.sendto(build_frame(FrameType.IDENTITY, identity_count, identity),
                                    host)
                        identity_count += 1
                        sent += 1
                        next_identity = next_slot + config.identity_interval_frames
                    if enabled:
                        if first_data_slot is None:
                            first_data_slot = next_slot
                        data_index += 1
                        if data_index - 1 in drop_data_frames:
                            data_dropped += 1
                        else:
                            data.sendto(build_frame(FrameType.DATA, next_slot,
                                                    payloads[next_slot % FRAME_PATTERNS]),
                                        host)
                            sent += 1
                            data_sent += 1
                except OSError:
                    send_errors += 1     # ENOBUFS/ECONNREFUSED: the datagram is lost
                next_slot += 1
            model.status["ETH_DATAGRAMS_SENT"] = sent & 0xFFFFFFFF
        behind_s = time.monotonic() - (start + (next_slot) * slot_period_s)
        if conn.poll():
            stop = conn.recv() == "stop"
        if time.monotonic() > deadline:
            stop = True
        wait = max(0.0, (next_slot * slot_period_s + start) - time.monotonic())
        select.select([control], [], [], min(wait, 0.02))
    conn.send({"datagrams_sent": sent, "data_frames_sent": data_sent,
               "data_frames_dropped": data_dropped,
               "send_errors": send_errors, "behind_s": max(0.0, behind_s),
               "first_data_slot": first_data_slot, "host_learned": host is not None})
    control.close()
    data.close()


class UdpBoard:
    """A virtual Gigabit Ethernet board on loopback in its own process (see the module
    docstring). ``url`` is what the host opens; :meth:`stop` returns the sender's counts."""

    def __init__(self, config: SystemConfig, *, speed: float = 1.0, seed: int = 1,
                 cpu: int | None = None, max_run_s: float = 3600.0,
                 drop_data_frames: "frozenset[int] | set[int] | tuple[int, ...]" = ()
                 ) -> None:
        self.config, self.speed, self.seed = config, speed, seed
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, name="spikeforge-udp-board",
                                         args=(config, speed, seed, child, max_run_s,
                                               frozenset(drop_data_frames)),
                                         daemon=True)
        self._process.start()
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(self._process.pid, {cpu})
            except OSError:
                pass
        if not self._conn.poll(30):
            self._process.kill()
            raise RuntimeError("the virtual UDP board did not start within 30 s")
        self.port: int = self._conn.recv()
        self.url = f"udp://127.0.0.1:{self.port}"
        self.result: dict | None = None

    def stop(self) -> dict:
        if self.result is None:
            try:
                self._conn.send("stop")
                self.result = self._conn.recv() if self._conn.poll(10) else {}
            except (OSError, EOFError):
                self.result = {}
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        return self.result

    def __enter__(self) -> "UdpBoard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def offered_bits_per_s(channels: int) -> float:
    """UDP payload bit rate of ``channels`` (channel-equivalents) raw at 30 kS/s: the DATA
    frames and the IDENTITY frames."""
    config = bench_config(channels)
    speed = max(1.0, channels / MAX_CHANNELS)
    frames = config.sample_rate_hz * speed / config.sweeps_per_frame
    identity = (DATA_FRAME_OVERHEAD_BYTES + len(encode_identity(config))) \
        / config.identity_interval_frames
    return frames * (config.payload_bytes + DATA_FRAME_OVERHEAD_BYTES + identity) * 8


@dataclass
class BenchStep:
    channels: int                 #: channel-equivalents offered
    duration_s: float             #: wall seconds asked for
    offered_bits_per_s: float
    received_bits_per_s: float    #: UDP payload received / wall time of the recording
    seconds: float                #: wall time of the recording
    ended: str
    sweeps: int                   #: written to the recording
    samples_lost: int             #: sweeps zero-filled
    sequence_gaps: int
    crc_errors: int
    kernel_drops: int
    host_queue_drops: int         #: dropped by the receive thread (its queue was full)
    queue_peak_bytes: int
    datagrams: int
    sender: dict
    receive_buffer_bytes: int
    out: Path | None = None
    receiver_cpu_s: float = 0.0   #: CPU time of the receiving process (user + system)
    #: DATA frames whose sweeps the recording lists as lost (zero-filled), from its losses
    frames_lost_in_recording: int = 0
    #: most bytes waiting in the Open Ephys writer thread's queue (copied, not yet written)
    writer_queue_peak_bytes: int = 0
    #: sweeps the writer thread's full queue refused (in samples_lost and the loss list)
    writer_sweeps_refused: int = 0

    @property
    def frames_lost_after_recording(self) -> int:
        """Sequence gaps the decoder counted past the recording's last sweep: frames lost
        in the backlog still arriving when the recording had its duration (see the module
        docstring); not in the recording, so not zero-filled there."""
        return max(0, self.sequence_gaps - self.frames_lost_in_recording)

    @property
    def lost(self) -> int:
        return (self.samples_lost + self.sequence_gaps + self.crc_errors + self.kernel_drops
                + self.host_queue_drops)

    @property
    def sender_kept_up(self) -> bool:
        return self.sender.get("behind_s", 0.0) < 0.5 and not self.sender.get("send_errors")

    @property
    def kept_pace(self) -> bool:
        """The recording ended on time: receiving and writing kept up with the stream
        (a receive queue that only grows would overflow in a longer run)."""
        return self.seconds <= self.duration_s * 1.05 + 0.5

    @property
    def held(self) -> bool:
        return (self.ended == "duration reached" and self.lost == 0 and self.sender_kept_up
                and self.kept_pace)

    def line(self) -> str:
        verdict = ("held" if self.held else "LOST" if self.lost
                   else "sender could not keep up" if not self.sender_kept_up
                   else "receiver fell behind" if not self.kept_pace else "not held")
        return (f"{self.channels:5d} ch  offered {self.offered_bits_per_s / 1e6:7.1f} Mbit/s  "
                f"received {self.received_bits_per_s / 1e6:7.1f} Mbit/s over "
                f"{self.seconds:5.1f} s  {self.datagrams} datagrams  "
                f"lost: {self.frames_lost_in_recording} frames in the recording "
                f"({self.samples_lost} sweeps zero-filled) + "
                f"{self.frames_lost_after_recording} after its end, {self.kernel_drops} "
                f"kernel + {self.host_queue_drops} queue drops, "
                f"{self.crc_errors} CRC, {self.writer_sweeps_refused} sweeps refused by the "
                f"writer  queue peak {self.queue_peak_bytes / 2**20:.0f} MiB (receive), "
                f"{self.writer_queue_peak_bytes / 2**20:.0f} MiB (writer)  "
                f"receiver CPU {self.receiver_cpu_s / max(self.seconds, 1e-9):.0%} of a core"
                f"  -> {verdict} ({self.ended})")


def run_step(channels: int, duration_s: float, out: Path, *, seed: int = 1,
             pin: bool = False,
             drop_data_frames: "frozenset[int] | set[int] | tuple[int, ...]" = ()
             ) -> BenchStep:
    """Offer ``channels`` for ``duration_s`` wall seconds; record into ``out``.
    ``drop_data_frames``: DATA frames the board does not send (:class:`UdpBoard`)."""
    from spikeforge.host.device import Device
    from spikeforge.host.recorder import Recorder
    from spikeforge.host.udp import udp_stats

    config = bench_config(channels)
    speed = max(1.0, channels / MAX_CHANNELS)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = pin and len(cpus) >= 2
    saved_affinity = set(cpus)
    board = UdpBoard(config, speed=speed, seed=seed, cpu=cpus[1] if pin else None,
                     max_run_s=duration_s * 3 + 60, drop_data_frames=drop_data_frames)
    try:
        if pin:
            os.sched_setaffinity(0, {cpus[0]})
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        with Device.open(board.url) as device:
            recorder = Recorder(device, out, duration_s=duration_s * speed)
            recorder.prepare()
            status = recorder.run()
            writer = recorder.writer
            # The counters as the recording ended (the receive thread goes on until close).
            stats = replace(udp_stats(device))
            link = replace(device.stats)
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        sender = board.stop()
        if pin:
            os.sched_setaffinity(0, saved_affinity)
    assert stats is not None
    seconds = max(status.elapsed_s, 1e-9)
    return BenchStep(
        channels=channels, duration_s=duration_s,
        offered_bits_per_s=offered_bits_per_s(channels),
        received_bits_per_s=stats.bytes * 8 / seconds, seconds=status.elapsed_s,
        ended=status.ended or "", sweeps=round(status.recorded_s * config.sample_rate_hz),
        samples_lost=status.samples_lost, sequence_gaps=link.sequence_gaps,
        crc_errors=link.crc_errors, kernel_drops=stats.kernel_drops,
        host_queue_drops=stats.host_queue_drops, queue_peak_bytes=stats.queue_peak_bytes,
        datagrams=stats.datagrams, sender=sender,
        receive_buffer_bytes=stats.receive_buffer_bytes, out=out,
        receiver_cpu_s=(cpu_after.ru_utime - cpu_before.ru_utime
                        + cpu_after.ru_stime - cpu_before.ru_stime),
        frames_lost_in_recording=frames_lost(recording_losses(out),
                                             config.sweeps_per_frame),
        writer_queue_peak_bytes=writer.background.stats.queue_peak_bytes if writer else 0,
        writer_sweeps_refused=writer.sweeps_refused if writer else 0)


def recording_losses(out: Path) -> list[dict[str, int]]:
    """The full-rate stream's loss list of the recording in ``out`` (``spikeforge.json``)."""
    found = list(Path(out).glob("**/spikeforge.json"))
    if not found:
        return []
    return json.loads(found[0].read_text()).get("losses", [])


def frames_lost(losses: list[dict[str, int]], sweeps_per_frame: int) -> int:
    """DATA frames whose sweeps ``losses`` cover (a loss starts at a frame's first sweep;
    the recording's end may cut the last one)."""
    return sum(-(-(loss["first_sample"] + loss["samples"]) // sweeps_per_frame)
               - loss["first_sample"] // sweeps_per_frame for loss in losses)


def verify_recording(out: Path, channels: int, seed: int = 1) -> int:
    """Compare the recording in ``out`` with the samples the sender sent; returns the
    sweeps checked. Sweeps the recording lists as lost (``spikeforge.json``) must be zero,
    every other one what was sent. Raises AssertionError on the first difference."""
    config = bench_config(channels)
    [stream] = list(out.glob("**/continuous/spikeforge-100.acquisition"))
    numbers = np.load(stream / "sample_numbers.npy", mmap_mode="r")
    samples = np.memmap(stream / "continuous.dat", dtype="<i2", mode="r").reshape(
        -1, config.channels)
    assert len(numbers) == len(samples), "sample_numbers.npy and continuous.dat disagree"
    assert len(samples), "the recording holds no samples"
    first = int(numbers[0])
    lost = np.zeros(len(samples), dtype=bool)
    for loss in recording_losses(out):
        lost[loss["first_sample"] - first:loss["first_sample"] - first + loss["samples"]] = True
    chunk = 32_768          # sweeps compared at a time (a long recording is gigabytes)
    for start in range(0, len(samples), chunk):
        stop = min(start + chunk, len(samples))
        assert np.array_equal(numbers[start:stop], np.arange(first + start, first + stop)), \
            "sample numbers are not consecutive"
        expected = expected_samples(config, seed, first + start, stop - start)
        expected[lost[start:stop]] = 0
        diff = np.flatnonzero((samples[start:stop] != expected).any(axis=1))
        if len(diff):
            where = start + int(diff[0])
            raise AssertionError(f"sweep {first + where} " + (
                "is listed as lost but not zero-filled" if lost[where]
                else "differs from what was sent"))
    return len(samples)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0,
                        help="wall seconds each rate must be held (default 60; at most "
                             f"{MAX_DURATION_S:g})")
    parser.add_argument("--channels", type=int, default=None,
                        help="run only this rate (channels at 30 kS/s raw; above 1024 the "
                             "1024-channel stream replayed faster); default: search")
    parser.add_argument("--max-channels", dest="max_channels", type=int, default=4096,
                        help="highest rate the search tries (default 4096)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the recordings (default: a temporary one, deleted)")
    parser.add_argument("--keep", action="store_true",
                        help="keep each step's recording (default: delete it after the step)")
    parser.add_argument("--verify", action="store_true",
                        help="check every recorded sample against what was sent")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=False,
                        help="pin the receiver to one core and the sender to another "
                             "(default off: on a shared machine a pinned process cannot "
                             "leave a busy core)")
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    """Run the bench; prints a line per step and the ``held:`` line. Exit code 0 if any
    rate was held, 1 if none."""
    if not 0 < args.duration <= MAX_DURATION_S:
        print(f"spikeforge bench link: --duration must be 0..{MAX_DURATION_S:g} s, not "
              f"{args.duration:g}", file=sys.stderr)
        return 2
    if args.channels is not None:
        if args.channels < 1:
            print("spikeforge bench link: --channels must be at least 1", file=sys.stderr)
            return 2
        ladder = [args.channels]
    else:
        ladder = [c for c in LADDER if c <= args.max_channels] or [args.max_channels]
    base = args.out or Path(tempfile.mkdtemp(prefix="spikeforge-link-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    held: BenchStep | None = None
    try:
        for channels in ladder:
            out = base / f"link-{channels}ch"
            if out.exists():
                shutil.rmtree(out)
            step = run_step(channels, args.duration, out, seed=args.seed, pin=args.pin)
            if step.receive_buffer_bytes and held is None:
                print(f"receive buffer granted: {step.receive_buffer_bytes // 1024} KiB")
            print(step.line(), flush=True)
            if step.held and args.verify:
                sweeps = verify_recording(out, channels, args.seed)
                print(f"      verified: {sweeps} sweeps x {bench_config(channels).channels} "
                      "channels equal what was sent")
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
            if not step.held:
                break
            held = step
    finally:
        if args.out is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    if held is None:
        print(f"held: nothing (the lowest rate tried, {ladder[0]} channels, lost data)")
        return 1
    print(f"held: {held.channels} channels at 30 kS/s raw "
          f"({held.offered_bits_per_s / 1e6:.0f} Mbit/s), 0 lost")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spikeforge bench link",
        description="Find the highest raw rate the UDP receiver and recorder hold on "
                    "loopback with zero datagrams lost.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
