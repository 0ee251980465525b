"""UART receiver bench: bytes sent at bit level by an asynchronous host come out exactly.

The sender runs with a baud error and a random phase against the design's clock, leaves
random gaps (often none: back to back), sends bytes with a low stop bit (must be dropped
and counted in ``framing_errors``) and short low glitches on the idle line (must be
ignored). Proves the received bytes are exactly the good bytes sent, in order, and that
the framing error count is exact.
"""

import random

import cocotb
from cocotb.triggers import Timer

from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, StreamSink, UARTSource
from spikeforge.sim.runner import bench_parameters, report


@cocotb.test()
async def bytes_from_the_line(dut):
    params = bench_parameters()
    divisor = int(params["divisor"])
    count = int(params["count"])
    baud_error = float(params["baud_error"])
    rng = random.Random(divisor * 1000 + count)
    bit_ps = round(divisor * CLOCK_PERIOD_NS * 1000 * (1 + baud_error))
    glitch_ps = max(1, (divisor - 1) // 2) * CLOCK_PERIOD_NS * 1000 - 2000

    line = UARTSource(dut.rx, bit_ps, rng)
    bench = Bench(dut)
    monitor = StreamSink(dut, "o")
    await bench.reset()
    await Timer(rng.randrange(1, CLOCK_PERIOD_NS * 1000), unit="ps")

    data = [0x00, 0xFF, 0x55, 0xAA, 0xA5, 0x5A] + [rng.randrange(256) for _ in range(count)]
    good, bad = [], 0
    for byte in data:
        stop = 1
        roll = rng.random()
        if roll < 0.08:
            stop, bad = 0, bad + 1
        elif roll < 0.14:
            dut.rx.value = 0
            await Timer(glitch_ps, unit="ps")
            dut.rx.value = 1
            await Timer(3 * bit_ps, unit="ps")
        await line.send_byte(byte, stop=stop)
        if stop:
            good.append(byte)
        else:
            await Timer(bit_ps, unit="ps")
        if rng.random() < 0.4:
            await Timer(rng.randrange(1, 30 * bit_ps), unit="ps")
    await Timer(3 * bit_ps, unit="ps")

    got = [value for _, value in monitor.items]
    first = next((i for i, (a, b) in enumerate(zip(got, good)) if a != b), None)
    assert got == good, (f"sent {len(good)} good bytes, received {len(got)}; first "
                         f"difference at {first}")
    errors = int(dut.framing_errors.value)
    assert errors == bad, f"{bad} bytes had a low stop bit, framing_errors = {errors}"
    report(items=len(got), cycles=bench.cycle(), framing_errors=errors)
