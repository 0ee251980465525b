"""cocotb drivers and monitors for spikeforge's ports, and the bench set-up they share.

Imported only inside cocotb benches (it needs a running simulator).
"""

import itertools
import random
from collections import deque
from collections.abc import Iterable, Iterator

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, ReadOnly, RisingEdge, Timer

from spikeforge.firmware.config import SystemConfig
from spikeforge.sim.spi_flash import SpiFlash

__all__ = ["CLOCK_PERIOD_NS", "Bench", "UARTMonitor", "UARTSource", "StreamSource", "StreamSink",
           "StreamMonitor", "idle_gaps", "ready_pattern", "pack_sample", "pack_sweeps",
           "run_sample_stream", "assert_samples", "FlashOnPins", "attach_flash"]

#: Simulated clock period. The benches count cycles; the absolute value does not matter.
CLOCK_PERIOD_NS = 10


class Bench:
    """Owns the clock and reset of a design and counts cycles from the end of reset.

    Cycle 0 is the first cycle in which the design runs out of reset; :meth:`cycle` is the
    number of the cycle now in progress.
    """

    def __init__(self, dut, *, flash: bool = True):
        """``flash``: give a design with ``flash_*`` pins (keyed builds) an erased
        configuration flash (:attr:`flash`, a :class:`~spikeforge.sim.spi_flash.SpiFlash`);
        a bench that brings its own says False."""
        self.dut = dut
        self._release_ns: int | None = None
        cocotb.start_soon(Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start())
        self.flash = attach_flash(dut) if flash else None

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


class FlashOnPins:
    """A :class:`~spikeforge.sim.spi_flash.SpiFlash` on a design's ``flash_*`` pins (keyed
    builds' configuration flash, :class:`~spikeforge.hdl.epoch_store.EpochStore`): steps
    the part at each falling clock edge (the design's registered pins settled) and drives
    CIPO. ``every_clock=False`` steps it only while chip select is low and once after it
    rises (a part whose busy time counts status polls needs nothing more), so a long
    system bench pays for the flash only while the flash is talked to."""

    def __init__(self, dut, flash, *, every_clock: bool = True):
        self.dut = dut
        self.flash = flash
        self.every_clock = every_clock
        dut.flash_cipo.value = 1
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        dut = self.dut
        stepped_cs_n = 1
        while True:
            if not self.every_clock and stepped_cs_n and int(dut.flash_cs_n.value):
                await FallingEdge(dut.flash_cs_n)
            await FallingEdge(dut.clk)
            stepped_cs_n = int(dut.flash_cs_n.value)
            dut.flash_cipo.value = self.flash.step(stepped_cs_n, int(dut.flash_sck.value),
                                                   int(dut.flash_copi.value))


def attach_flash(dut):
    """An erased :class:`~spikeforge.sim.spi_flash.SpiFlash` on the design's ``flash_*``
    pins if it has them (keyed builds; undriven, CIPO would read all zeros: every epoch
    spent); returns it, or None."""
    if not hasattr(dut, "flash_cipo"):
        return None
    flash = SpiFlash()
    FlashOnPins(dut, flash, every_clock=False)
    return flash


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


class StreamSource:
    """Drives the source side of a stream port (``<prefix>__valid``/``payload``/``ready``).

    Items wait in a queue (:meth:`send_nowait`, :meth:`send`) and go out one per transfer.
    Values change at falling clock edges; a transfer happens at the rising edge where valid
    and ready are both high. ``idle`` yields, per item, how many cycles to wait before
    offering it (see :func:`idle_gaps`), so every stream is also tested under gaps. While the
    design's ``rst`` is high, valid is held low; :meth:`clear` drops what is queued.
    :attr:`sent` keeps ``(time_ns, item)`` of every transfer.
    """

    def __init__(self, dut, prefix: str, idle: Iterable[int] = itertools.repeat(0)):
        self.clk = dut.clk
        self.rst = getattr(dut, "rst", None)
        self.valid = getattr(dut, f"{prefix}__valid")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.idle: Iterator[int] = iter(idle)
        self.sent: list[tuple[float, int]] = []
        self.queue: deque[int] = deque()
        self._queued = Event()
        self._idle = Event()
        self._idle.set()
        self.valid.value = 0
        cocotb.start_soon(self._run())

    def send_nowait(self, item: int) -> None:
        self.queue.append(item)
        self._idle.clear()
        self._queued.set()

    async def send(self, items: Iterable[int]) -> None:
        """Queue ``items`` and wait until the last is taken and valid has dropped."""
        for item in items:
            self.send_nowait(item)
        await self.wait()

    async def wait(self) -> None:
        """Wait until the queue is empty and the stream idle."""
        if self.queue or not self._idle.is_set():
            await self._idle.wait()

    def empty(self) -> bool:
        return not self.queue

    def clear(self) -> None:
        self.queue.clear()

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self._idle.set()
                self._queued.clear()
                await self._queued.wait()
            await self._offer(self.queue.popleft())
            if not self.queue:
                await FallingEdge(self.clk)
                self.valid.value = 0

    async def _offer(self, item: int) -> None:
        for _ in range(next(self.idle)):
            await FallingEdge(self.clk)
            self.valid.value = 0
        while True:
            await FallingEdge(self.clk)
            in_reset = self.rst is not None and int(self.rst.value)
            self.valid.value = 0 if in_reset else 1
            self.payload.value = item
            await ReadOnly()
            if not in_reset and int(self.ready.value):
                self.sent.append((_now_ns(), item))
                return


class StreamSink:
    """Takes transfers on the sink side of a stream port and keeps ``(time_ns, payload)``.

    ``ready`` (if the port has one) follows ``ready_pattern``, one value per cycle, set at
    falling edges (see :func:`ready_pattern`); transfers are sampled in the settled second
    half of each cycle. :meth:`recv` waits for the next item not yet received.

    ``always_ready``: the port has no ready (an ``always_ready`` stream). Say so: the
    Verilated top may hold an *internal* net named ``<prefix>__ready`` (a submodule's ready
    flattened into the top's names), which would otherwise be taken for the port's and
    driven, or used to drop transfers.
    """

    def __init__(self, dut, prefix: str, ready_pattern: Iterable[int] | None = None,
                 *, drive_ready: bool = True, always_ready: bool = False):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{prefix}__valid")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.ready = (getattr(dut, f"{prefix}__ready", None)
                      if drive_ready and not always_ready else None)
        self.items: list[tuple[float, int]] = []
        self._taken = 0
        self._arrived = Event()
        pattern = iter(ready_pattern) if ready_pattern is not None else itertools.repeat(1)
        cocotb.start_soon(self._run(pattern))

    def empty(self) -> bool:
        return self._taken == len(self.items)

    async def recv(self) -> int:
        while self.empty():
            self._arrived.clear()
            await self._arrived.wait()
        self._taken += 1
        return self.items[self._taken - 1][1]

    async def _run(self, pattern: Iterator[int]) -> None:
        while True:
            await FallingEdge(self.clk)
            ready = next(pattern)
            if self.ready is not None:
                self.ready.value = ready
            await ReadOnly()
            if ready and int(self.valid.value):
                self.items.append((_now_ns(), int(self.payload.value)))
                self._arrived.set()


class StreamMonitor(StreamSink):
    """Watches a stream port without driving it: keeps every transfer (valid and ready high
    in the same cycle), for ports another party drives."""

    def __init__(self, dut, prefix: str, *, always_ready: bool = False):
        super().__init__(dut, prefix, drive_ready=False)
        self.ready = None if always_ready else getattr(dut, f"{prefix}__ready", None)

    async def _run(self, pattern: Iterator[int]) -> None:
        while True:
            await FallingEdge(self.clk)
            await ReadOnly()
            if int(self.valid.value) and (self.ready is None or int(self.ready.value)):
                self.items.append((_now_ns(), int(self.payload.value)))
                self._arrived.set()


def idle_gaps(rng: random.Random, stall: str) -> Iterator[int]:
    """Idle cycles before each item of a source: none for ``stall == "none"``, else short
    random gaps (most items back to back)."""
    if stall == "none":
        return itertools.repeat(0)
    return (rng.choice([0, 0, 0, 1, 3]) for _ in itertools.count())


def ready_pattern(rng: random.Random, stall: str, busy: float = 0.3) -> Iterator[int]:
    """A sink's ready, cycle by cycle: always for ``stall == "none"``, else low with
    probability ``busy``."""
    if stall == "none":
        return itertools.repeat(1)
    return (int(rng.random() > busy) for _ in itertools.count())


class UARTSource:
    """Drives an 8N1 line from the host side: ``bit_ps`` per bit (any baud error), idle
    high; each :meth:`send` starts at a random phase against the design's clock, as an
    asynchronous sender does."""

    def __init__(self, line, bit_ps: int, rng: random.Random):
        self.line = line
        self.bit_ps = bit_ps
        self.rng = rng
        line.value = 1

    async def send(self, data: bytes, *, bad_stop: bool = False) -> None:
        await Timer(self.rng.randrange(1, CLOCK_PERIOD_NS * 1000), unit="ps")
        for byte in data:
            await self.send_byte(byte, stop=0 if bad_stop else 1)
        if bad_stop:
            await Timer(self.bit_ps, unit="ps")

    async def send_byte(self, byte: int, *, stop: int = 1) -> None:
        """One byte, from its start bit to the end of its stop bit (``stop=0``: a framing
        error), then the line idle high."""
        for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [stop]:
            self.line.value = bit
            await Timer(self.bit_ps, unit="ps")
        self.line.value = 1


# Channel-serial sample streams (SampleLayout), shared by the benches of the cores that
# take one sample per clock.

def pack_sample(config: SystemConfig, channel: int, value: int, first: bool) -> int:
    """SampleLayout packs channel, value, first from bit 0 up."""
    bits = config.channel_bits
    return channel | ((value & 0xFFFF) << bits) | (int(first) << (bits + 16))


def pack_sweeps(config: SystemConfig, samples) -> list[int]:
    """``samples`` (sweeps x channels) as SampleLayout payloads, channel-serial."""
    return [pack_sample(config, c, int(samples[n, c]), c == 0)
            for n in range(samples.shape[0]) for c in range(samples.shape[1])]


async def run_sample_stream(dut, config: SystemConfig, samples, stall: str,
                            rng: random.Random) -> tuple[Bench, list[int]]:
    """Resets a channel-serial core, drives ``samples`` (sweeps x channels) into its ``i``
    stream (with random idle gaps unless ``stall`` is "none") while its ``o`` stream sees
    random back-pressure, and returns the bench and every payload the core put out."""
    bench = Bench(dut)
    await bench.reset()
    idle = idle_gaps(rng, stall)
    ready = ready_pattern(rng, stall)
    sink = StreamSink(dut, "o", ready_pattern=ready)
    source = StreamSource(dut, "i", idle=idle)
    await source.send(pack_sweeps(config, samples))
    await bench.cycles(20)
    return bench, [p for _, p in sink.items]


def assert_samples(config: SystemConfig, got: list[int], values, what: str) -> None:
    """``got`` must be exactly ``values`` (sweeps x channels) as SampleLayout payloads."""
    expected = pack_sweeps(config, values)
    for index, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (
            f"{what} {index // config.channels}, channel {index % config.channels}: "
            f"RTL gave 0x{g:x}, model expects 0x{e:x}")
    assert len(got) == len(expected), f"RTL gave {len(got)} samples, model {len(expected)}"
