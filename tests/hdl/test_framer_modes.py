"""The framer's COMPRESSED path on its own (Amaranth simulator): blocks become one frame
each, a block the coder marks damaged is rolled back whole and counted, never sent."""

from amaranth.hdl import Const, Fragment, Module
from amaranth.lib import stream, wiring
from amaranth.sim import Simulator

from spikeforge.firmware.compression import CodecConfig
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.wire import BandwidthMode, FrameType
from spikeforge.hdl.framer import Framer
from spikeforge.hdl.layouts import SampleLayout
from spikeforge.host import FrameParser

CHANNELS = 2
CPS = 8
BLOCK_SWEEPS = 2


def _run(blocks: list[tuple[list[int], bool]], mode: int) -> tuple[list, int, int]:
    """Drive samples for len(blocks) blocks; after each block's samples the coder 'emits'
    its words (the last one ``last``, ``damaged`` if asked). Returns the frames sent and
    the frames_sent / frames_dropped counters."""
    config = SystemConfig(channels=CHANNELS, sample_rate_hz=30_000, clock_hz=30_000 * CPS,
                          baud=30_000 * CPS, sweeps_per_frame=1, link_buffer_samples=256,
                          codec=CodecConfig(enabled=True, block_sweeps=BLOCK_SWEEPS))
    dut = Framer(config)
    out = bytearray()
    counters = {}

    async def bench(ctx):
        ctx.set(dut.enable, 1)
        ctx.set(dut.mode, mode)
        ctx.set(dut.o.ready, 1)
        for words, damaged in blocks:
            # the block's samples, channel-serial
            for sweep in range(BLOCK_SWEEPS):
                for channel in range(CPS):
                    valid = channel < CHANNELS
                    ctx.set(dut.i.valid, valid)
                    ctx.set(dut.i.payload.channel, channel if valid else 0)
                    ctx.set(dut.i.payload.value, 100 * sweep + channel)
                    ctx.set(dut.i.payload.first, valid and channel == 0)
                    await _tick(ctx, dut, out)
            ctx.set(dut.i.valid, 0)
            # the coder's words of this block, before the next block's first sample
            for index, word in enumerate(words):
                last = index == len(words) - 1
                ctx.set(dut.compressed.valid, 1)
                ctx.set(dut.compressed.payload.data, word)
                ctx.set(dut.compressed.payload.last, last)
                ctx.set(dut.compressed.payload.damaged, damaged and last)
                await _tick(ctx, dut, out)
            ctx.set(dut.compressed.valid, 0)
        for _ in range(400):
            await _tick(ctx, dut, out)
        counters["sent"] = ctx.get(dut.frames_sent)
        counters["dropped"] = ctx.get(dut.frames_dropped)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    frames = [f for f in FrameParser().feed(bytes(out)) if f.type != FrameType.IDENTITY]
    return frames, counters["sent"], counters["dropped"]


async def _tick(ctx, dut, out: bytearray) -> None:
    if ctx.get(dut.o.valid):
        out.append(ctx.get(dut.o.payload))
    await ctx.tick()


def test_each_block_is_one_compressed_frame_and_a_damaged_block_is_never_sent():
    blocks = [([0x1234, 0x2222, 0x3333], False),
              ([0x4444, 0x5555, 0xDEAD], True),      # lost words: the coder marks it damaged
              ([0x6666], False),
              ([0x7777, 0x8888], False)]
    frames, sent, dropped = _run(blocks, BandwidthMode.LOSSLESS)
    assert [(f.type, f.seq) for f in frames] == [
        (FrameType.COMPRESSED, 0), (FrameType.COMPRESSED, 2), (FrameType.COMPRESSED, 3)]
    assert frames[0].payload == bytes.fromhex("341222223333")      # words little-endian
    assert frames[1].payload == bytes.fromhex("6666")
    assert frames[2].payload == bytes.fromhex("77778888")
    assert (sent, dropped) == (3, 1)


def test_other_modes_skip_the_coder_blocks_without_counting_drops():
    blocks = [([0x1111, 0x2222], False), ([0x3333], True)]
    frames, sent, dropped = _run(blocks, BandwidthMode.EVENTS)
    assert frames == [] and (sent, dropped) == (0, 0)


def test_frames_sent_counts_a_frame_two_cycles_after_its_last_byte():
    """FRAMES_SENT is registered once more than the frame end (a timing cut on the ECP5);
    the system model's ``sent_by`` says the same, and this pins the framer to it."""
    config = SystemConfig(channels=CHANNELS, sample_rate_hz=30_000, clock_hz=30_000 * CPS,
                          baud=30_000 * CPS, sweeps_per_frame=1, link_buffer_samples=256)
    dut = Framer(config)
    taken: list[tuple[int, int]] = []     # (cycle, byte) the UART side took
    counts: list[int] = []                # frames_sent in each cycle

    async def bench(ctx):
        ctx.set(dut.enable, 1)
        ctx.set(dut.o.ready, 1)
        for cycle in range(60 * CPS):
            channel = cycle % CPS
            valid = channel < CHANNELS
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload.channel, channel if valid else 0)
            ctx.set(dut.i.payload.value, cycle)
            ctx.set(dut.i.payload.first, valid and channel == 0)
            counts.append(ctx.get(dut.frames_sent))
            if ctx.get(dut.o.valid):
                taken.append((cycle, ctx.get(dut.o.payload)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    parser = FrameParser()
    ends = []                             # cycle of each DATA frame's last byte
    for cycle, byte in taken:
        ends += [cycle for f in parser.feed(bytes([byte])) if f.type == FrameType.DATA]
    assert len(ends) >= 3
    for cycle, count in enumerate(counts):
        assert count == sum(1 for end in ends if end + 2 <= cycle), f"cycle {cycle}"


def test_slot_admission_admits_drops_and_skips_whole_slots():
    """One SlotAdmission (the DATA and LFP paths' shared part): a slot is decided at its
    first sample; admitted slots write every kept sample, refused ones none; with the
    interlock a slot is refused while the other path's frame is incomplete."""
    from spikeforge.hdl.framer_parts import SlotAdmission

    config = SystemConfig(channels=2, sample_rate_hz=30_000, clock_hz=30_000 * 4,
                          baud=30_000 * 4, sweeps_per_frame=2, link_buffer_samples=8)
    dut = SlotAdmission(config, interlock=True)
    # per slot: (wanted, reserved, other_incomplete) -> expected outcome
    slots = [((1, 0, 0), "admit"), ((1, 5, 0), "drop"), ((0, 0, 0), "skip"),
             ((1, 4, 0), "admit"), ((1, 0, 1), "drop")]
    seen = []

    async def bench(ctx):
        ctx.set(dut.frame_samples, 4)
        ctx.set(dut.keep, 1)
        for (wanted, reserved, other), _ in slots:
            ctx.set(dut.wanted, wanted)
            ctx.set(dut.reserved, reserved)
            ctx.set(dut.other_incomplete, other)
            admit = dropped = writes = 0
            incomplete_after = []
            for _sweep in range(2):
                for cycle in range(4):                 # 2 samples, 2 idle cycles
                    valid = cycle < 2
                    ctx.set(dut.valid, valid)
                    ctx.set(dut.first, valid and cycle == 0)
                    admit += ctx.get(dut.admit)
                    dropped += ctx.get(dut.dropped)
                    writes += ctx.get(dut.write)
                    await ctx.tick()
                    incomplete_after.append(ctx.get(dut.incomplete))
            outcome = "admit" if admit else "drop" if dropped else "skip"
            seen.append((outcome, writes, incomplete_after[-1], ctx.get(dut.seq)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [s[0] for s in seen] == [expected for _, expected in slots]
    for (outcome, writes, incomplete, _), _ in zip(seen, slots):
        assert writes == (4 if outcome == "admit" else 0)
        assert incomplete == 0           # the frame is complete at its last sample
    assert [s[3] for s in seen] == [1, 2, 3, 4, 5]   # seq counts every slot


def test_framer_declares_its_always_ready_inputs():
    """The sample, coded-word and LFP inputs never stall their producers: their signatures
    say so (``always_ready``), which ``wiring.connect`` checks; the outputs and the event
    input (taken as the serializer sends) do not."""
    from spikeforge.firmware.config import DetectorConfig
    from spikeforge.firmware.decimation import DecimatorConfig

    config = SystemConfig(channels=4, sweeps_per_frame=4, link_buffer_samples=256,
                          detector=DetectorConfig(enabled=True),
                          codec=CodecConfig(enabled=True, block_sweeps=4),
                          lfp=DecimatorConfig(factor=4, order=3))
    framer = Framer(config)
    members = framer.signature.members
    for name in ("i", "compressed", "lfp"):
        assert members[name].signature.always_ready, name
        assert isinstance(getattr(framer, name).ready, Const), name
    assert not members["events"].signature.always_ready
    assert not members["o"].signature.always_ready
    # An ordinary producer (ready a signal it reads) connects: ready is tied high.
    m = Module()
    m.submodules.framer = framer
    source = stream.Signature(SampleLayout(config)).create()
    wiring.connect(m, source, framer.i)
    Fragment.get(m, None)
