"""UART bench: bytes offered with random gaps come out of ``tx`` as exact 8N1 frames.

Proves each byte's value, that its start bit begins the cycle after the byte was taken,
that bytes offered back to back leave every 10 bit times with no gap, and that the line
never shows a framing error.
"""

import random

import cocotb
from cocotb.triggers import Timer

from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, StreamSource, UARTMonitor
from spikeforge.sim.runner import bench_parameters, report


@cocotb.test()
async def bytes_on_the_line(dut):
    params = bench_parameters()
    divisor = int(params["divisor"])
    count = int(params["count"])
    rng = random.Random(divisor)
    # Adversarial bytes first (all zeros, all ones, alternating), then random.
    data = [0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80] + [rng.randrange(256) for _ in range(count - 6)]
    # Half the bytes back to back, the rest after random gaps (some longer than a byte).
    gaps = [0 if rng.random() < 0.5 else rng.randrange(1, 25 * divisor) for _ in data]

    bench = Bench(dut)
    uart = UARTMonitor(dut.tx, divisor * CLOCK_PERIOD_NS)
    driver = StreamSource(dut, "i", idle=iter(gaps))
    await bench.reset()
    await driver.send(data)
    await Timer(12 * divisor * CLOCK_PERIOD_NS, unit="ns")

    assert not uart.framing_errors, f"{len(uart.framing_errors)} framing errors"
    got = uart.data
    first_difference = next((i for i, (a, b) in enumerate(zip(got, data)) if a != b),
                            min(len(got), len(data)))
    assert got == bytes(data), (
        f"sent {len(data)} bytes, line carried {len(got)}; first difference at byte "
        f"{first_difference}")
    accepted = [bench.cycle_of(t) for t, _ in driver.sent]
    started = [bench.cycle_of(t) for t, _ in uart.received]
    for index, (a, s) in enumerate(zip(accepted, started)):
        assert s == a + 1, f"byte {index} taken in cycle {a} but its start bit began in {s}"
    back_to_back = sum(1 for a, b in zip(accepted, accepted[1:]) if b - a == 10 * divisor)
    assert all(b - a >= 10 * divisor for a, b in zip(accepted, accepted[1:])), \
        "the UART took a byte before the previous one was out"
    report(items=len(got), cycles=bench.cycle(), back_to_back=back_to_back)
