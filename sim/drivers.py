"""cocotb drivers and monitors for spikeforge's ports, and the bench set-up they share.

Imported only inside cocotb benches (it needs a running simulator).
"""

import itertools
from collections.abc import Iterable, Iterator

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, Timer

__all__ = ["CLOCK_PERIOD_NS", "Bench", "UARTMonitor", "StreamDriver", "StreamMonitor"]

#: Simulated clock period. The benches count cycles; the absolute value does not matter.
CLOCK_PERIOD_NS = 10


class Bench:
    """Owns the clock and reset of a design and counts cycles from the end of reset.

    Cycle 0 is the first cycle in which the design runs out of reset; :meth:`cycle` is the
    number of the cycle now in progress.
    """

    def __init__(self, dut):
        self.dut = dut
        self._release_ns: int | None = None
        cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())

    async def reset(self, cycles: int = 4) -> None:
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self._release_ns = _now_ns()

    def cycle(self) -> int:
        assert self._release_ns is not None, "reset() first"
        return int((_now_ns() - self._release_ns) // CLOCK_PERIOD_NS)

    def cycle_of(self, time_ns: float) -> int:
        """The cycle in progress at ``time_ns`` (a cycle begins at its rising edge)."""
        assert self._release_ns is not None, "reset() first"
        return int((time_ns - self._release_ns) // CLOCK_PERIOD_NS)

    async def cycles(self, count: int) -> None:
        """Wait ``count`` rising edges (one trigger, not a Python wake-up per cycle)."""
        if count > 0:
            await ClockCycles(self.dut.clk, count)


def _now_ns() -> float:
    from cocotb.utils import get_sim_time

    return get_sim_time("ns")


class UARTMonitor:
    """Decodes an 8N1 serial line at bit level.

    Waits for the falling edge of a start bit, then samples each bit in its middle. A start
    bit that is not low in its middle or a stop bit that is not high is a framing error, kept
    in :attr:`framing_errors` with its time. Each byte is kept with the time its start bit
    began.
    """

    def __init__(self, line, bit_ns: float):
        self.line = line
        self.bit_ns = bit_ns
        self.received: list[tuple[float, int]] = []
        self.framing_errors: list[float] = []
        cocotb.start_soon(self._run())

    @property
    def data(self) -> bytes:
        return bytes(value for _, value in self.received)

    async def _run(self) -> None:
        while True:
            await FallingEdge(self.line)
            start = _now_ns()
            await Timer(self.bit_ns / 2, unit="ns")
            if int(self.line.value) != 0:
                self.framing_errors.append(start)
                continue
            value = 0
            for bit in range(8):
                await Timer(self.bit_ns, unit="ns")
                value |= int(self.line.value) << bit
            await Timer(self.bit_ns, unit="ns")
            if int(self.line.value) != 1:
                self.framing_errors.append(start)
            self.received.append((start, value))
            # Mid stop bit: the line is high; the next start bit is a new falling edge.


class StreamDriver:
    """Drives the source side of a stream port (``<prefix>__valid``/``payload``/``ready``).

    Values change at falling clock edges; a transfer happens at the rising edge where valid
    and ready are both high. ``idle`` yields, per item, how many cycles to wait before
    offering it, so every stream is also tested under gaps.
    """

    def __init__(self, dut, prefix: str, idle: Iterable[int] = itertools.repeat(0)):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.idle: Iterator[int] = iter(idle)
        self.sent: list[tuple[float, int]] = []
        self.valid.value = 0

    async def send(self, items: Iterable[int]) -> None:
        for item in items:
            for _ in range(next(self.idle)):
                await FallingEdge(self.clk)
                self.valid.value = 0
            while True:
                await FallingEdge(self.clk)
                self.valid.value = 1
                self.payload.value = item
                await ReadOnly()
                if int(self.ready.value):
                    self.sent.append((_now_ns(), item))
                    break
        await FallingEdge(self.clk)
        self.valid.value = 0


class StreamMonitor:
    """Records ``(time_ns, payload)`` of every transfer on the sink side of a stream port.

    ``ready`` (if the port has one) follows ``ready_pattern``, one value per cycle, set at
    falling edges; transfers are sampled in the settled second half of each cycle.
    """

    def __init__(self, dut, prefix: str, ready_pattern: Iterable[int] | None = None):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.ready = getattr(dut, f"{prefix}__ready", None)
        self.items: list[tuple[float, int]] = []
        pattern = iter(ready_pattern) if ready_pattern is not None else itertools.repeat(1)
        cocotb.start_soon(self._run(pattern))

    async def _run(self, pattern: Iterator[int]) -> None:
        while True:
            await FallingEdge(self.clk)
            ready = next(pattern)
            if self.ready is not None:
                self.ready.value = ready
            await ReadOnly()
            if ready and int(self.valid.value):
                self.items.append((_now_ns(), int(self.payload.value)))
