"""Flash epoch store bench: the core on a SPI NOR part model, against the golden model.

A :class:`~spikeforge.sim.spi_flash.SpiFlash` (4 MiB, starting in deep power-down, busy for
a set number of status polls after each program, tRES1 as long as the core's wait) sits on
the core's flash pins, stepped once per clock. Each image is provisioned into the region
(random bytes around it), the core is reset, and then:

* ``high`` after the boot scan equals :func:`~spikeforge.sim.models.epoch_store.scan` of the
  region;
* per request, ``done`` comes, ``ok``, ``high`` and ``failed`` equal
  :class:`~spikeforge.sim.models.epoch_store.EpochStoreModel`'s, the whole region equals the
  model's byte for byte, and the part carried out exactly the model's number of programs
  (none for a no-op, a raise above the limit or after a failure);
* after the raises, a reset (the part keeps its array) makes the core read back the model's
  ``H``: the mark survives the reset;
* nothing outside the region changed, and the part saw no SPI protocol violation (mode 0,
  CS# framing, whole bytes, WREN before every program, no command while WIP or too soon
  after 0xAB).

Images are random canonical ones (``images`` of them, ``raises`` random requests each:
no-ops, +1, several bits, many bytes, to the limit, above it) or one named image with a
given list of requests (``to``, then ``after_reset``).
"""

import random

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, with_timeout

from spikeforge.firmware.epoch_store import region_limit
from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, FlashOnPins
from spikeforge.sim.models.epoch_store import (
    EpochStoreModel,
    canonical_region,
    program_values,
    scan,
)
from spikeforge.sim.runner import bench_parameters, report
from spikeforge.sim.spi_flash import SpiFlash

#: Bytes of random data provisioned on each side of the region (must never change).
_GUARD_BYTES = 300
_MAX_RAISE_TO = (1 << 17) - 1


def _image(rng: random.Random, kind: str, region_bytes: int) -> bytes:
    limit = region_limit(region_bytes)
    if kind == "random":
        high = rng.choice([0, limit, rng.randrange(limit), 8 * rng.randrange(region_bytes),
                           rng.randrange(limit), rng.randrange(limit // 2)])
        return canonical_region(high, region_bytes)
    if kind == "erased":
        return b"\xff" * region_bytes
    if kind == "exhausted":
        return bytes(region_bytes)
    if kind.startswith("high="):
        return canonical_region(int(kind[5:]), region_bytes)
    if kind.startswith("noncanonical="):
        # Whole cleared bytes, one byte with a stray pattern, then random bytes.
        index, pattern = (int(x, 0) for x in kind[13:].split(","))
        tail = rng.randbytes(region_bytes - index - 1)
        return bytes(index) + bytes([pattern]) + tail
    raise ValueError(f"unknown image kind {kind!r}")


def _random_raise(rng: random.Random, high: int, limit: int) -> int:
    kind = rng.random()
    if kind < 0.15:
        to = rng.randrange(high + 1)                        # no-op
    elif kind < 0.45:
        to = high + 1
    elif kind < 0.65:
        to = high + rng.randrange(2, 9)
    elif kind < 0.85:
        to = high + rng.randrange(9, 90)                    # several bytes
    elif kind < 0.93:
        to = limit + rng.randrange(1, 3000)                 # above the limit
    else:
        to = limit
    return min(to, _MAX_RAISE_TO)


class EpochBench:
    def __init__(self, dut, params: dict):
        self.dut = dut
        self.params = params
        self.offset = int(params["offset"])
        self.region_bytes = int(params["region_bytes"])
        self.limit = region_limit(self.region_bytes)
        divider = int(params["divider"])
        self.byte_cycles = 16 * divider + 2 + int(params["deselect_cycles"])
        self.poll_limit = int(params["poll_limit"])
        self.write_protected = bool(params.get("write_protected", False))
        self.stuck_busy = bool(params.get("stuck_busy", False))
        self.flash = SpiFlash(busy_polls=int(params.get("busy_polls", 2)),
                              write_protected=self.write_protected,
                              stuck_busy=self.stuck_busy, powered_down=True,
                              wake_steps=int(params["wake_cycles"]))
        self.bench = Bench(dut, flash=False)
        FlashOnPins(dut, self.flash)
        dut.request.value = 0
        dut.raise_to.value = 0
        self.cycles = 0
        self.requests = 0
        self.model: EpochStoreModel | None = None

    def region(self) -> bytes:
        return self.flash.read(self.offset, self.region_bytes)

    def provision(self, rng: random.Random, region: bytes) -> None:
        self.flash.load(self.offset - _GUARD_BYTES, rng.randbytes(_GUARD_BYTES))
        self.flash.load(self.offset, region)
        self.flash.load(self.offset + self.region_bytes, rng.randbytes(_GUARD_BYTES))
        self.guards = (self.flash.read(self.offset - _GUARD_BYTES, _GUARD_BYTES),
                       self.flash.read(self.offset + self.region_bytes, _GUARD_BYTES))
        self.model = EpochStoreModel(region, write_protected=self.write_protected,
                                     stuck_busy=self.stuck_busy)

    async def boot(self) -> None:
        """Reset the core (the part keeps its array) and check its scan."""
        dut, model = self.dut, self.model
        assert model is not None
        if self.bench._release_ns is not None:
            self.cycles += self.bench.cycle()
            if self.stuck_busy:
                # A stuck part recovers only by losing power (then it works).
                self.flash.power_cycle()
                self.stuck_busy = model.stuck_busy = False
        await FallingEdge(dut.clk)      # out of a read-only phase
        await self.bench.reset()
        bound = (self.region_bytes + 8) * self.byte_cycles + int(self.params["wake_cycles"])
        await with_timeout(RisingEdge(dut.ready), (bound + 50) * CLOCK_PERIOD_NS, "ns")
        await ReadOnly()
        want = model.reboot()
        assert want == scan(self.region())
        got = int(dut.high.value)
        assert got == want, f"boot scan: core H = {got}, model {want}"
        assert not int(dut.failed.value)
        self.check_flash("boot scan")

    async def request(self, to: int) -> None:
        dut, model, flash = self.dut, self.model, self.flash
        assert model is not None
        high_before, failed_before = model.high, model.failed
        programs_before = len(flash.programs)
        if to <= high_before or to > self.limit or failed_before:
            programs = 0
        elif self.stuck_busy:
            programs = 1
        else:
            programs = len(program_values(high_before, to))
        want_ok = model.request(to)
        await FallingEdge(dut.clk)
        dut.raise_to.value = to
        dut.request.value = 1
        bytes_moved = (max(to, high_before) - high_before) // 8 + 2
        bound = bytes_moved * (8 + 2 * self.poll_limit) * self.byte_cycles + 200
        await with_timeout(RisingEdge(dut.done), bound * CLOCK_PERIOD_NS, "ns")
        await ReadOnly()
        what = f"raise {high_before} -> {to} (limit {self.limit}, failed {failed_before})"
        got_ok, got_high = int(dut.ok.value), int(dut.high.value)
        assert got_ok == want_ok, f"{what}: core ok {got_ok}, model {int(want_ok)}"
        assert got_high == model.high, f"{what}: core H {got_high}, model {model.high}"
        assert int(dut.failed.value) == model.failed, (
            f"{what}: core failed {int(dut.failed.value)}, model {int(model.failed)}")
        # Drop the request as a registered user does: in the cycle after done. The core must
        # not take it again, and done is a one-cycle strobe.
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.request.value = 0
        for _ in range(3):
            assert not int(dut.done.value), f"{what}: done again after the request ended"
            await FallingEdge(dut.clk)
        self.check_flash(what)
        got_programs = len(flash.programs) - programs_before
        assert got_programs == programs, f"{what}: {got_programs} programs, model {programs}"
        self.requests += 1

    def check_flash(self, what: str) -> None:
        assert self.model is not None
        got = self.region()
        if got != self.model.region:
            diff = [k for k in range(self.region_bytes) if got[k] != self.model.region[k]]
            k = diff[0]
            raise AssertionError(f"{what}: region byte {k} is {got[k]:#04x}, model "
                                 f"{self.model.region[k]:#04x} ({len(diff)} bytes differ)")
        assert (self.flash.read(self.offset - _GUARD_BYTES, _GUARD_BYTES),
                self.flash.read(self.offset + self.region_bytes, _GUARD_BYTES)) == \
            self.guards, f"{what}: bytes outside the region changed"
        assert not self.flash.violations, f"{what}: SPI protocol: {self.flash.violations[:5]}"


@cocotb.test()
async def epoch_store_matches_model(dut):
    params = bench_parameters()
    rng = random.Random(int(params.get("seed", 1)))
    tb = EpochBench(dut, params)
    kind = params["image"]
    images = int(params.get("images", 1))
    highs = []
    for _ in range(images):
        tb.provision(rng, _image(rng, kind, tb.region_bytes))
        await tb.boot()
        assert tb.model is not None
        highs.append(tb.model.high)
        if kind == "random":
            plan = [None] * int(params["raises"])
        else:
            plan = list(params.get("to", []))
        for to in plan:
            await tb.request(_random_raise(rng, tb.model.high, tb.limit) if to is None else to)
        # The mark survives a reset: the core reads back what it wrote.
        high_before_reset = tb.model.high
        await tb.boot()
        assert tb.model.high >= high_before_reset
        for to in params.get("after_reset", []):
            await tb.request(to)
    tb.cycles += tb.bench.cycle()
    assert tb.requests > 0
    report(items=tb.requests, cycles=tb.cycles, programs=len(tb.flash.programs),
           boot_highs=highs[:8], failed=int(tb.model.failed))
