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

import cocotb

from spikeforge.firmware.registers import REGISTERS, register
from spikeforge.firmware.wire import CommandOp
from spikeforge.sim.control_bench import ControlBench, writable_registers
from spikeforge.sim.models.control import CONTROL_COUNTERS
from spikeforge.sim.runner import bench_parameters


@cocotb.test()
async def commands_match_model(dut):
    tb = await ControlBench.start(dut)
    config, rng = tb.config, tb.rng
    operations = int(bench_parameters()["operations"])

    present = [r for r in REGISTERS if r.present(config)]
    known = [r for r in present if r.access in ("rw", "const") or r.name in CONTROL_COUNTERS]
    writable = writable_registers(config)  # STREAM_ENABLE: apart; BANDWIDTH_MODE: system bench
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
    await tb.finish(CONTROL_COUNTERS, kinds)


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
