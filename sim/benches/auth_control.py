"""Authenticated control bench: a keyed build's command decoder, in the whole acquisition
system, against :class:`CommandDecoderModel` (commands in on ``uart_rx`` at bit level, replies
out of ``uart_tx`` among the data frames, as the control bench).

Each case once, then a random mix: signed writes and reads; retries (same frame again: the
stored reply, not a replay refusal); replays (a signed frame under a new tag, an old counter:
``REPLAYED``); forged tags and tampered values (``AUTH_FAILED``); plain writes
(``AUTH_REQUIRED``) and plain reads (open); a forged frame that takes the host's next tag
(the host's real command under that tag must still be carried out); corrupted and truncated
authenticated frames; bursts of signed commands back to back. It proves every reply equals
the model's byte for byte, refused writes change nothing (read back), and the device's
AUTH_REFUSED, REPLAYS_REFUSED, AUTH_COUNTER and control counters equal the model's.
"""

import cocotb

from spikeforge.firmware.control_protocol import (
    CommandOp,
    ReplyStatus,
    encode_authenticated_command,
)
from spikeforge.firmware.framing import crc32
from spikeforge.firmware.registers import AUTH_COUNTERS, REGISTERS
from spikeforge.sim.control_bench import ControlBench, writable_registers
from spikeforge.sim.models.control import CONTROL_COUNTERS
from spikeforge.sim.runner import bench_parameters


class AuthBench(ControlBench):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key = self.config.control_key_bytes
        self.counter = self.rng.randrange(1, 1000)

    def signed(self, address: int, op: CommandOp, value: int = 0, *, tag: int | None = None,
               counter: int | None = None) -> bytes:
        if counter is None:
            self.counter += self.rng.choice([1, 1, 1, 2, 1000])
            counter = self.counter
        return encode_authenticated_command(self.next_tag() if tag is None else tag, address,
                                            op, value, counter, self.key)

    def last_status(self) -> ReplyStatus:
        return self.replies[-1].status


@cocotb.test()
async def authenticated_commands_match_model(dut):
    tb = await AuthBench.start(dut)
    config, rng = tb.config, tb.rng
    operations = int(bench_parameters()["operations"])

    present = [r for r in REGISTERS if r.present(config)]
    writable = writable_registers(config)
    readable = [r for r in present if r.access in ("rw", "const")
                or r.name in CONTROL_COUNTERS + AUTH_COUNTERS]
    kinds: dict[str, int] = {}

    def count(kind: str) -> None:
        kinds[kind] = kinds.get(kind, 0) + 1

    async def read_back(reg) -> int:
        await tb.transact([tb.command(reg.address, CommandOp.READ)])
        return tb.replies[-1].value

    async def step(kind: str) -> None:
        count(kind)
        reg = rng.choice(writable)
        mask = (1 << reg.width(config)) - 1
        value = rng.randrange(2**32)
        if kind == "signed write":
            await tb.transact([tb.signed(reg.address, CommandOp.WRITE, value)])
            assert tb.last_status() == ReplyStatus.OK
            assert await read_back(reg) == tb.model.bank.values[reg.name]
        elif kind == "signed read":
            await tb.transact([tb.signed(rng.choice(readable).address, CommandOp.READ)])
        elif kind == "plain read":
            await tb.transact([tb.command(rng.choice(readable).address, CommandOp.READ)])
        elif kind == "retry":
            frame = tb.signed(reg.address, CommandOp.WRITE, value)
            await tb.transact([frame])
            await tb.transact([frame])
            assert tb.replies[-1] == tb.replies[-2], "a retry was not answered from the store"
        elif kind == "replay":
            before = await read_back(reg)
            old = tb.counter - rng.randrange(0, 3)
            await tb.transact([tb.signed(reg.address, CommandOp.WRITE, value ^ 1, counter=old)])
            assert tb.last_status() == ReplyStatus.REPLAYED
            assert await read_back(reg) == before, "a replayed write was applied"
        elif kind == "forged":
            before = await read_back(reg)
            frame = bytearray(tb.signed(reg.address, CommandOp.WRITE, value))
            if rng.random() < 0.5:
                frame[9 + 10 + rng.randrange(8)] ^= 1 << rng.randrange(8)   # the tag
            else:
                frame[9 + 2 + rng.randrange(4)] ^= 1 << rng.randrange(8)    # the value
            # Re-seal the CRC: only the tag can tell.
            frame[-4:] = crc32(bytes(frame[2:-4])).to_bytes(4, "little")
            await tb.transact([bytes(frame)])
            assert tb.last_status() == ReplyStatus.AUTH_FAILED
            assert await read_back(reg) == before, "a forged write was applied"
        elif kind == "plain write":
            before = await read_back(reg)
            await tb.transact([tb.command(reg.address, CommandOp.WRITE, value)])
            assert tb.last_status() == ReplyStatus.AUTH_REQUIRED
            assert await read_back(reg) == before, "an unauthenticated write was applied"
        elif kind == "tag squatting":
            # A forger sends under the host's next tag first; the host's own command under
            # that tag must be carried out, not answered as a retry.
            tag = (tb.tag + 1) & 0xFFFFFFFF
            await tb.transact([tb.command(reg.address, CommandOp.WRITE, value, tag=tag)])
            tb.tag = tag
            await tb.transact([tb.signed(reg.address, CommandOp.WRITE, value ^ 5, tag=tag)])
            assert tb.last_status() == ReplyStatus.OK
            assert tb.replies[-1].value == (value ^ 5) & mask
        elif kind == "corrupt":
            frame = bytearray(tb.signed(reg.address, CommandOp.WRITE, value))
            bit = rng.randrange(8 * len(frame))
            frame[bit // 8] ^= 1 << (bit % 8)
            await tb.transact([bytes(frame)])
        elif kind == "truncated":
            frame = tb.signed(reg.address, CommandOp.WRITE, value)
            await tb.transact([frame[:rng.randrange(1, len(frame))]])
        elif kind == "burst":
            await tb.transact([tb.signed(rng.choice(writable).address, CommandOp.WRITE,
                                         rng.randrange(2**32))
                               for _ in range(rng.randrange(2, 6))])

    every = ["signed write", "signed read", "plain read", "retry", "replay", "forged",
             "plain write", "tag squatting", "corrupt", "truncated", "burst"]
    for kind in every + [rng.choice(every) for _ in range(operations)]:
        await step(kind)

    for name in ("AUTH_REFUSED", "REPLAYS_REFUSED"):
        assert tb.model.counters[name] > 0, f"the bench never made the device count {name}"
    await tb.finish(CONTROL_COUNTERS + AUTH_COUNTERS, kinds)
