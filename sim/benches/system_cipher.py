"""System bench of the encrypted stream: a ``stream_cipher`` build from reset to bits on the
UART pin, its session and its stop written by the host as signed commands on ``uart_rx``,
decoded by the host's own decoder with the :class:`~spikeforge.host.cipher.FrameOpener`.

The run, as a host does it:

1. from reset the stream is on but no session is set: the DATA frames are withheld (counted
   in CIPHER_FRAMES_WITHHELD), the IDENTITY frames pass in the clear;
2. at ``session_at`` the host writes CIPHER_SESSION_LO then CIPHER_SESSION_HI, each an
   authenticated command (SipHash-2-4 under the build's control key, counters 1 and 2);
   from then on the DATA frames go sealed, the link loaded as the configuration says (the
   8-byte tag of each frame included);
3. every ``read_every`` cycles a plain read (FRAMES_DROPPED) goes out on ``uart_rx``;
4. at ``stop_at`` a signed write of STREAM_ENABLE = 0; the link drains; the counters are read
   over the register bus.

Checks:

* the bytes on ``uart_tx`` are whole frames back to back from the first to the last, no
  framing error, no byte lost, doubled or torn (a reply in the middle of a frame, a frame cut
  short or run long by a wrong length);
* every command is answered once, with its tag, status OK and the value it wrote, and its
  reply starts within a frame period, the longest frame and a reply of the command's last
  byte (a DATA frame's bytes wait for their samples): replies keep coming under load;
* every sealed frame is byte for byte the golden models' (the framer's DATA frame of its
  seq, :func:`~spikeforge.sim.models.cipher.seal_frame` under the build's keys and the
  session), and the host decoder (:class:`~spikeforge.host.frames.StreamDecoder` with a
  :class:`~spikeforge.host.cipher.FrameOpener`) yields exactly the test source's samples for
  it, with no CRC error, cipher failure, malformed frame or discarded byte;
* no sequence gap beyond the framer's counted drops: the seqs that never arrived are
  exactly the frames withheld before the session (all before the first sealed one) and
  FRAMES_DROPPED; CIPHER_FRAMES_SEALED equals the sealed frames received, and withheld +
  sealed equals FRAMES_SENT; ``expect_drops`` says whether the case must drop (an
  overloaded link) or must not (a load the budget says fits).

Cycle timing is not compared with a model here (the framer model does not follow the
cipher's latencies); :mod:`spikeforge.sim.benches.cipher_link` proves the cipher's bytes
under random back-pressure, :mod:`spikeforge.sim.benches.system` the framer's cycles.
"""

import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.control_protocol import (
    REPLY_FRAME_BYTES,
    CommandOp,
    ReplyStatus,
    decode_reply,
    encode_authenticated_command,
    encode_command,
)
from spikeforge.firmware.framing import (
    CRC_BYTES,
    HEADER,
    HEADER_BYTES,
    SYNC,
    FrameType,
    build_frame,
)
from spikeforge.firmware.identity import encode_identity
from spikeforge.firmware.registers import register
from spikeforge.firmware.stream_cipher import SEALED, derive_keys
from spikeforge.host.cipher import FrameOpener
from spikeforge.host.frames import DataBlock, Identity, StreamDecoder
from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, UARTMonitor, UARTSource
from spikeforge.sim.models.cipher import seal_frame
from spikeforge.sim.models.framer import SOURCE_LATENCY
from spikeforge.sim.models.source import source_signal
from spikeforge.sim.runner import bench_parameters, report


def link_frames(received: list[tuple[int, int]]) -> list[tuple[bytes, int, int]]:
    """The UART's (cycle, byte) pairs as whole frames: (bytes, cycle of the first byte,
    cycle of the last). Fails at the first byte that is not where a frame must start."""
    frames, at = [], 0
    data = bytes(value for _, value in received)
    while at < len(data):
        assert data[at:at + 2] == SYNC, (
            f"link byte {at} (cycle {received[at][0]}) is 0x{data[at]:02x}, not a frame's "
            f"sync: the frame before it was cut, run long, or had bytes lost or doubled")
        if at + HEADER_BYTES > len(data):
            break                      # the run ended inside a header
        _, _, length = HEADER.unpack_from(data, at + 2)
        end = at + HEADER_BYTES + length + CRC_BYTES
        if end > len(data):
            break                      # the run ended inside this frame
        frames.append((data[at:end], received[at][0], received[end - 1][0]))
        at = end
    return frames


#: Cycles the first signed command of a boot can spend raising the epoch in the bench's
#: flash (hdl/epoch_store.py at SCK = clk/4), with margin.
EPOCH_RAISE_CYCLES = 1500


class Host:
    """Sends commands on ``uart_rx`` one at a time, keeping when each one's last byte went."""

    def __init__(self, bench: Bench, config: SystemConfig, rng: random.Random):
        self.bench = bench
        self.key = config.control_key_bytes
        self.line = UARTSource(bench.dut.uart_rx, config.uart_divisor * CLOCK_PERIOD_NS * 1000,
                               rng)
        self.tag = 100
        self.counter = 0
        #: tag -> (address, operation, value written or None, cycle of the last byte)
        self.sent: dict[int, tuple[int, CommandOp, int | None, int]] = {}

    async def write(self, name: str, value: int) -> None:
        self.tag += 1
        self.counter += 1
        address = register(name).address
        await self.line.send(encode_authenticated_command(
            self.tag, address, CommandOp.WRITE, value, self.counter, self.key))
        self.sent[self.tag] = (address, CommandOp.WRITE, value, self.bench.cycle())

    async def read(self, name: str) -> None:
        self.tag += 1
        address = register(name).address
        await self.line.send(encode_command(self.tag, address, CommandOp.READ))
        self.sent[self.tag] = (address, CommandOp.READ, None, self.bench.cycle())


async def read_register(bench: Bench, name: str) -> int:
    dut = bench.dut
    await FallingEdge(dut.clk)
    dut.registers__addr.value = register(name).address
    await FallingEdge(dut.clk)
    await ReadOnly()
    return int(dut.registers__r_data.value)


async def stream_stop_cycle(bench: Bench, stopped: list[int]) -> None:
    """The first cycle ``streaming`` is low (the STREAM_ENABLE = 0 write took effect)."""
    await FallingEdge(bench.dut.streaming)
    stopped.append(bench.cycle())


async def run_host(bench: Bench, host: Host, params: dict) -> None:
    session_at, stop_at = int(params["session_at"]), int(params["stop_at"])
    read_every = int(params["read_every"])
    await bench.cycles(session_at - bench.cycle())
    session = int(params["session"])
    await host.write("CIPHER_SESSION_LO", session & 0xFFFFFFFF)
    # The first signed command spends its epoch in the flash first (the decoder takes no
    # bytes meanwhile); a real host waits for its reply (Device.command), this one waits
    # out the bench flash's program: WREN, PAGE PROGRAM, 3 polls, read-back, ~600 cycles.
    await bench.cycles(EPOCH_RAISE_CYCLES)
    await host.write("CIPHER_SESSION_HI", session >> 32)
    while bench.cycle() + read_every < stop_at:
        await bench.cycles(read_every)
        await host.read("FRAMES_DROPPED")
    await bench.cycles(stop_at - bench.cycle())
    await host.write("STREAM_ENABLE", 0)


@cocotb.test()
async def sealed_stream_decodes_to_the_source(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    cycles = int(params["cycles"])
    rng = random.Random(int(params.get("seed", 1)))
    session = int(params["session"])
    key = config.control_key_bytes
    cipher_key, mac_key = derive_keys(key)

    dut.registers__w_en.value = 0
    dut.registers__addr.value = 0
    dut.registers__w_data.value = 0
    bench = Bench(dut)
    uart = UARTMonitor(dut.uart_tx, config.uart_divisor * CLOCK_PERIOD_NS)
    host = Host(bench, config, rng)
    await bench.reset()
    cocotb.start_soon(run_host(bench, host, params))
    stopped: list[int] = []
    cocotb.start_soon(stream_stop_cycle(bench, stopped))
    await bench.cycles(cycles)

    assert not uart.framing_errors, (
        f"{len(uart.framing_errors)} framing errors, first at cycle "
        f"{bench.cycle_of(uart.framing_errors[0])}")
    received = [(bench.cycle_of(t), v) for t, v in uart.received]
    frames = link_frames(received)
    summary = [(f[2], HEADER.unpack_from(f, 2)[1], first) for f, first, _ in frames[-6:]]
    assert sum(len(f) for f, _, _ in frames) == len(received), (
        f"the link was still sending when the run ended (last frames: type, seq, first "
        f"cycle: {summary}; commands: {host.sent})")

    # -- replies: every command answered once, in time ---------------------------------------
    # A DATA frame's bytes wait for their samples, so one can take up to a frame period.
    longest = max(len(f) for f, _, _ in frames)
    bound = (config.sweeps_per_frame * config.cycles_per_sample
             + (longest + REPLY_FRAME_BYTES) * config.cycles_per_byte + 200)
    replies = {}
    for frame, first, _ in frames:
        if frame[2] == FrameType.REPLY:
            _, tag, _ = HEADER.unpack_from(frame, 2)
            assert tag not in replies, f"command {tag} answered twice"
            replies[tag] = (decode_reply(tag, frame[HEADER_BYTES:-CRC_BYTES]), first)
    for tag, (address, op, value, sent_at) in host.sent.items():
        assert tag in replies, (
            f"command {tag} ({op.name} of register 0x{address:02x}, last byte in cycle "
            f"{sent_at}) was never answered")
        reply, at = replies[tag]
        assert reply.status == ReplyStatus.OK, f"command {tag} refused: {reply.status!r}"
        assert reply.address == address
        if value is not None:
            assert reply.value == value, f"write {tag}: reply value {reply.value}, not {value}"
        assert at - sent_at <= bound, (
            f"command {tag}'s reply came {at - sent_at} cycles after it (at most {bound}: a "
            "frame period, the longest frame and the reply)")
    assert len(replies) == len(host.sent), "replies to commands never sent"

    # -- sealed frames: the models' bytes, the host's samples --------------------------------
    sweeps = cycles // config.cycles_per_sample + config.sweeps_per_frame
    samples = source_signal(config, sweeps).samples
    spf = config.sweeps_per_frame
    identity_payload = encode_identity(config)
    decoder = StreamDecoder(opener=FrameOpener(key, session))
    seqs, identities = [], 0
    for frame, first, _ in frames:
        frame_type, seq, _ = HEADER.unpack_from(frame, 2)
        if frame_type == FrameType.REPLY:
            continue
        if frame_type == FrameType.IDENTITY:
            assert frame[HEADER_BYTES:-CRC_BYTES] == identity_payload
            identities += 1
            continue
        assert frame_type == FrameType.DATA | SEALED, (
            f"a frame of type 0x{frame_type:02x} in cycle {first}: only IDENTITY, REPLY and "
            "sealed DATA frames may leave a cipher build")
        plain = build_frame(FrameType.DATA, seq,
                            samples[seq * spf:(seq + 1) * spf].astype("<i2").tobytes())
        want = seal_frame(plain, cipher_key, mac_key, session)
        assert frame == want, (
            f"sealed DATA seq {seq} (from cycle {first}) differs from the models' at byte "
            f"{next(i for i, (a, b) in enumerate(zip(frame, want)) if a != b)}")
        seqs.append(seq)
    blocks = []
    for item in decoder.feed(bytes(v for _, v in received)) + decoder.flush():
        if isinstance(item, DataBlock):
            blocks.append(item)
        else:
            assert isinstance(item, Identity) or hasattr(item, "status"), item
    stats = decoder.stats
    assert (stats.crc_errors, stats.cipher_failures, stats.malformed,
            stats.bytes_discarded) == (0, 0, 0, 0), f"the host decoder: {stats}"
    assert [b.seq for b in blocks] == seqs
    for block in blocks:
        np.testing.assert_array_equal(
            block.samples, samples[block.first_sample:block.first_sample + spf],
            err_msg=f"DATA seq {block.seq}: the host's samples are not the source's")

    # -- loss accounting: gaps are the counted drops and the withheld frames ----------------
    assert seqs, "no sealed frame arrived"
    assert seqs == sorted(set(seqs)), "sealed frames out of order or repeated"
    sent = await read_register(bench, "FRAMES_SENT")
    dropped = await read_register(bench, "FRAMES_DROPPED")
    sealed = await read_register(bench, "CIPHER_FRAMES_SEALED")
    withheld = await read_register(bench, "CIPHER_FRAMES_WITHHELD")
    assert sealed == len(seqs), f"CIPHER_FRAMES_SEALED {sealed}, {len(seqs)} sealed arrived"
    assert withheld + sealed == sent, (
        f"withheld {withheld} + sealed {sealed} != FRAMES_SENT {sent}")
    # The slots decided while the stream was on: each was sent (withheld or sealed) or
    # dropped; those after the last sealed one were dropped. A slot is decided at its first
    # sample (the framer model's timing); one starting right at the stop may go either way.
    assert stopped, "the signed STREAM_ENABLE = 0 write never took effect"
    period = spf * config.cycles_per_sample
    decided = {-(-(stopped[0] + edge - SOURCE_LATENCY) // period) for edge in (-1, 0, 1)}
    assert sent + dropped in decided, (
        f"FRAMES_SENT {sent} + FRAMES_DROPPED {dropped} != the {sorted(decided)} slots that "
        f"started before the stream stopped in cycle {stopped[0]}")
    dropped_after = sent + dropped - (seqs[-1] + 1)
    missing = seqs[-1] + 1 - len(seqs)
    assert missing == withheld + dropped - dropped_after, (
        f"{missing} DATA seqs up to {seqs[-1]} never arrived, but {withheld} were withheld "
        f"and {dropped - dropped_after} dropped (counted): frames were lost on the way")
    assert stats.sequence_gaps <= dropped, (
        f"{stats.sequence_gaps} sequence gaps after the first sealed frame, {dropped} counted "
        "drops")
    if params["expect_drops"]:
        assert dropped > 0, "the overloaded case dropped nothing: it tests nothing"
    else:
        assert dropped == 0, f"{dropped} frames dropped at a load the budget says fits"
    assert withheld > 0, "no frame was withheld before the session: raise session_at"
    report(items=len(received), cycles=bench.cycle(), frames_sealed=sealed,
           frames_withheld=withheld, frames_dropped=dropped, identity_frames=identities,
           replies=len(replies), sequence_gaps=stats.sequence_gaps)
