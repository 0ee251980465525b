"""The control-path benches' host side (:mod:`sim.benches.control`,
:mod:`sim.benches.auth_control`): commands sent into ``uart_rx`` at bit level, replies decoded
out of ``uart_tx`` among the data frames and checked against :class:`CommandDecoderModel`, and
the setup and closing checks both benches share."""

import random
from typing import Self

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import REGISTERS, Register, register
from spikeforge.firmware.wire import (
    CommandOp,
    command_timeout_cycles,
    decode_reply,
    encode_command,
)
from spikeforge.host.frames import DataBlock, Reply, StreamDecoder
from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, UARTMonitor, UARTSource
from spikeforge.sim.models.control import CommandDecoderModel
from spikeforge.sim.runner import bench_parameters, report


def writable_registers(config: SystemConfig) -> list[Register]:
    """The rw registers a random mix may write: not STREAM_ENABLE, BANDWIDTH_MODE or the
    front-end's (they would stop the bench's own traffic or the front-end; the control and
    system benches exercise them apart)."""
    return [r for r in REGISTERS if r.present(config) and r.access == "rw"
            and r.name not in ("STREAM_ENABLE", "BANDWIDTH_MODE")
            and not r.name.startswith("RHD_")]


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

    @classmethod
    async def start(cls, dut) -> Self:
        """The bench for the parameters the runner passed (config, seed, baud_error), with
        the register bus idle, after reset and 200 cycles."""
        params = bench_parameters()
        config = SystemConfig.from_dict(params["config"])
        rng = random.Random(int(params.get("seed", 1)))
        dut.registers__w_en.value = 0
        dut.registers__addr.value = 0
        dut.registers__w_data.value = 0
        tb = cls(dut, config, rng, float(params.get("baud_error", 0.0)))
        await tb.bench.reset()
        await tb.bench.cycles(200)
        return tb

    async def finish(self, counters: list[str], kinds: dict[str, int]) -> None:
        """Read ``counters`` over the link (the model checks them as replies), check the
        link carried no broken frame and some data, and report the run."""
        for name in counters:
            await self.transact([self.command(register(name).address, CommandOp.READ)])
        self.poll()
        stats = self.decoder.stats
        assert stats.crc_errors == 0 and stats.bytes_discarded == 0 and stats.malformed == 0, (
            f"the link carried broken frames: {stats}")
        assert self.data_blocks, "no data frames: the bench must run under traffic"
        report(items=len(self.replies), cycles=self.bench.cycle(),
               data_frames=len(self.data_blocks),
               **{k.replace(" ", "_").replace("+", "_"): v for k, v in kinds.items()},
               **{k.lower(): v for k, v in self.model.counters.items()})

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
