"""Control-path bench: commands into ``uart_rx`` of the whole acquisition system, replies out
of ``uart_tx`` among the data frames, against :class:`CommandDecoderModel`.

The host side is simulated at bit level, with a baud error and a random phase per burst.
The bench sends random register reads and writes (rw, const, counters, unmapped addresses),
corrupted commands (one bit flipped), truncated commands (alone, and followed at once by a
good one), retries (same tag, different value: must not apply), bytes with a bad stop bit,
and bursts of commands back to back — all while the framer keeps the link busy. It proves:

* every reply equals the model's, byte for byte (tag, address, status, value, CRC), in order,
  and nothing is answered that the model does not answer;
* every byte on ``uart_tx`` belongs to a frame with a good CRC (replies never split a frame);
* register effects happen: the model's rw values read back, ``STREAM_ENABLE`` = 0 stops DATA
  frames and 1 brings them back, and the device counts exactly the model's executed,
  discarded and framing-error commands (read back over the link at the end).
"""

import random

import cocotb

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import REGISTERS, register
from spikeforge.firmware.wire import (
    CommandOp,
    command_timeout_cycles,
    decode_reply,
    encode_command,
)
from spikeforge.host.frames import DataBlock, Reply, StreamDecoder
from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, UARTMonitor, UARTSource
from spikeforge.sim.models.control import CONTROL_COUNTERS, CommandDecoderModel
from spikeforge.sim.runner import bench_parameters, report


class ControlBench:
    def __init__(self, dut, config: SystemConfig, rng: random.Random, baud_error: float):
        self.dut = dut
        self.config = config
        self.rng = rng
        self.bench = Bench(dut)
        bit_ns = config.uart_divisor * CLOCK_PERIOD_NS
        self.tx = UARTMonitor(dut.uart_tx, bit_ns)
        self.rx = UARTSource(dut.uart_rx, round(bit_ns * 1000 * (1 + baud_error)), rng)
        self.model = CommandDecoderModel(config)
        self.decoder = StreamDecoder()
        self.fed = 0
        self.replies: list[Reply] = []
        self.expected: list[Reply] = []
        self.data_blocks: list[DataBlock] = []
        self.tag = rng.randrange(2**32)
        self.timeout_cycles = command_timeout_cycles(config)
        # Long enough for the frame in flight plus a burst of replies.
        frame_bytes = config.payload_bytes + 13
        self.reply_wait = (frame_bytes + 8 * 19) * config.cycles_per_byte + 2000

    def poll(self) -> None:
        received = self.tx.received
        data = bytes(value for _, value in received[self.fed:])
        self.fed = len(received)
        for item in self.decoder.feed(data):
            if isinstance(item, Reply):
                self.replies.append(item)
            elif isinstance(item, DataBlock):
                self.data_blocks.append(item)

    def next_tag(self) -> int:
        self.tag = (self.tag + 1) & 0xFFFFFFFF
        return self.tag

    async def transact(self, commands: list[bytes], *, corrupt_at: int | None = None) -> None:
        """Send ``commands`` back to back (the bytes as given), feed the model the same, and
        wait for the replies it predicts; if it predicts none, wait out the timeout."""
        data = b"".join(commands)
        expected = [decode_reply(int.from_bytes(f[3:7], "little"), f[9:15])
                    for f in self.model.feed(data)]
        await self.rx.send(data)
        if expected:
            self.expected += expected
            await self._wait_for(len(self.expected))
        else:
            await self.idle_out()

    async def idle_out(self) -> None:
        """Leave the line idle past the command timeout (a truncated frame is dropped)."""
        await self.bench.cycles(self.timeout_cycles + 50)
        self.model.timeout()
        self.poll()
        assert len(self.replies) == len(self.expected), (
            f"the device answered {self.replies[len(self.expected):]} where the model "
            "expects no reply")

    async def _wait_for(self, count: int) -> None:
        waited = 0
        while True:
            self.poll()
            if len(self.replies) >= count:
                break
            assert waited < self.reply_wait, (
                f"no reply after {waited} cycles; expected {self.expected[len(self.replies):]}")
            await self.bench.cycles(100)
            waited += 100
        for index in range(len(self.replies)):
            assert self.replies[index] == self.expected[index], (
                f"reply {index}: device {self.replies[index]}, model {self.expected[index]}")

    def command(self, address: int, op: CommandOp, value: int = 0,
                tag: int | None = None) -> bytes:
        return encode_command(self.next_tag() if tag is None else tag, address, op, value)


@cocotb.test()
async def commands_match_model(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    operations = int(params["operations"])
    rng = random.Random(int(params.get("seed", 1)))
    dut.registers__w_en.value = 0
    dut.registers__addr.value = 0
    dut.registers__w_data.value = 0
    tb = ControlBench(dut, config, rng, float(params.get("baud_error", 0.0)))
    await tb.bench.reset()
    await tb.bench.cycles(200)

    present = [r for r in REGISTERS if r.present(config)]
    known = [r for r in present if r.access in ("rw", "const") or r.name in CONTROL_COUNTERS]
    # Writes that would stop the bench's own traffic or the front-end are exercised apart.
    # BANDWIDTH_MODE switches what the framer sends: the system bench's mode cases cover it.
    writable = [r for r in present if r.access == "rw"
                and r.name not in ("STREAM_ENABLE", "BANDWIDTH_MODE")
                and not r.name.startswith("RHD_")]
    unmapped = [a for a in range(256) if a not in {r.address for r in present}]
    kinds = {"read": 0, "write": 0, "read-only write": 0, "unmapped": 0, "corrupt": 0,
             "truncated": 0, "truncated+good": 0, "retry": 0, "framing": 0, "burst": 0}

    def random_command() -> bytes:
        choice = rng.random()
        if choice < 0.35:
            kinds["read"] += 1
            return tb.command(rng.choice(known).address, CommandOp.READ)
        if choice < 0.7:
            kinds["write"] += 1
            value = rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(2**32), rng.randrange(16)])
            return tb.command(rng.choice(writable).address, CommandOp.WRITE, value)
        if choice < 0.85:
            kinds["read-only write"] += 1
            reg = rng.choice([r for r in known if r.access != "rw"])
            return tb.command(reg.address, CommandOp.WRITE, rng.randrange(2**32))
        kinds["unmapped"] += 1
        return tb.command(rng.choice(unmapped), rng.choice(list(CommandOp)), 5)

    # The adversarial cases first, once each, then a random mix.
    plan = ["corrupt", "truncated", "truncated+good", "retry", "framing", "burst", "stream"]
    plan += [rng.choice(["single"] * 6 + ["corrupt", "truncated", "truncated+good", "retry",
                                           "framing", "burst"]) for _ in range(operations)]
    last = None
    for step in plan:
        if step == "single":
            last = random_command()
            await tb.transact([last])
        elif step == "corrupt":
            kinds["corrupt"] += 1
            frame = bytearray(random_command())
            bit = rng.randrange(8 * len(frame))
            frame[bit // 8] ^= 1 << (bit % 8)
            await tb.transact([bytes(frame)])
        elif step == "truncated":
            kinds["truncated"] += 1
            frame = random_command()
            await tb.transact([frame[:rng.randrange(1, len(frame))]])
        elif step == "truncated+good":
            kinds["truncated+good"] += 1
            cut = random_command()
            good = random_command()
            await tb.transact([cut[:rng.randrange(1, len(cut))], good])
            await tb.idle_out()
            await tb.transact([good])  # the host's retry, same tag
        elif step == "retry":
            kinds["retry"] += 1
            reg = rng.choice(writable)
            tag = tb.next_tag()
            await tb.transact([tb.command(reg.address, CommandOp.WRITE, 3, tag=tag)])
            # Same tag, another value (different in every register width, 1 bit up): the
            # stored reply comes back, nothing is written.
            await tb.transact([tb.command(reg.address, CommandOp.WRITE, 8, tag=tag)])
            await tb.transact([tb.command(reg.address, CommandOp.READ)])
            assert tb.replies[-1].value == 3 & ((1 << reg.width(config)) - 1), (
                "a retried write was applied again")
        elif step == "framing":
            kinds["framing"] += 1
            await tb.rx.send(bytes([rng.randrange(256)]), bad_stop=True)
            tb.model.framing_error()
            await tb.bench.cycles(20 * config.uart_divisor)
        elif step == "burst":
            kinds["burst"] += 1
            await tb.transact([random_command() for _ in range(rng.randrange(2, 6))])
        elif step == "stream":
            await stream_enable_stops_data(tb)

    # The device's own counters, read over the link, equal the model's.
    for name in CONTROL_COUNTERS:
        await tb.transact([tb.command(register(name).address, CommandOp.READ)])
    tb.poll()
    stats = tb.decoder.stats
    assert stats.crc_errors == 0 and stats.bytes_discarded == 0 and stats.malformed == 0, (
        f"the link carried broken frames: {stats}")
    assert tb.data_blocks, "no data frames: the bench must run under traffic"
    report(items=len(tb.replies), cycles=tb.bench.cycle(), data_frames=len(tb.data_blocks),
           **{k.replace(" ", "_").replace("+", "_"): v for k, v in kinds.items()},
           **{k.lower(): v for k, v in tb.model.counters.items()})


async def stream_enable_stops_data(tb: ControlBench) -> None:
    """STREAM_ENABLE = 0: once the buffered frames are out, no DATA frame comes; = 1: they
    come again."""
    config = tb.config
    address = register("STREAM_ENABLE").address
    frame_period = config.sweeps_per_frame * config.cycles_per_sample
    drain = (2 * config.link_buffer_samples + 200) * config.cycles_per_byte + 2 * frame_period
    await tb.transact([tb.command(address, CommandOp.WRITE, 0)])
    await tb.bench.cycles(drain)
    tb.poll()
    before = len(tb.data_blocks)
    await tb.bench.cycles(4 * frame_period + config.payload_bytes * config.cycles_per_byte)
    tb.poll()
    assert len(tb.data_blocks) == before, "DATA frames kept coming with STREAM_ENABLE = 0"
    await tb.transact([tb.command(address, CommandOp.WRITE, 1)])
    await tb.bench.cycles(4 * frame_period + 2 * (config.payload_bytes + 13)
                          * config.cycles_per_byte)
    tb.poll()
    assert len(tb.data_blocks) > before, "DATA frames did not resume with STREAM_ENABLE = 1"
