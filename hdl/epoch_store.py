"""The flash epoch store: the replay high-water mark ``H`` of keyed builds, kept in the
board's SPI NOR configuration flash across resets (issue 19).

The contract (the unary thermometer region, ``H``, the opcodes) is
:mod:`spikeforge.firmware.epoch_store`; the golden model is
:mod:`spikeforge.sim.models.epoch_store`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.epoch_store import (
    ADDRESS_BITS,
    EPOCH_LIMIT,
    OP_PAGE_PROGRAM,
    OP_READ,
    OP_READ_STATUS,
    OP_RELEASE_POWER_DOWN,
    OP_WRITE_ENABLE,
    REGION_BYTES,
    REGION_OFFSET,
    STATUS_WIP,
    region_limit,
)
from spikeforge.firmware.errors import ConfigError

__all__ = ["EpochStore"]

#: Width of ``high`` and ``raise_to``: 0..EPOCH_LIMIT.
HIGH_BITS = EPOCH_LIMIT.bit_length()


class EpochStore(wiring.Component):
    """Reads ``H`` from the flash at boot and raises it on request, verified by read-back.

    Ports
    -----
    flash_sck, flash_cs_n, flash_copi : out; flash_cipo : in
        The SPI NOR part, mode 0: SCK idles low; COPI changes one cycle after SCK falls
        (while it is low) and the part samples it on the rising edge; CIPO is sampled at
        the end of SCK's high phase. All three outputs are registers. CS# stays high at
        least ``deselect_cycles`` between commands.
    high : out, 17 bits
        ``H``, valid once ``ready``; it changes only when a raise verifies.
    ready : out
        The boot scan is done (stays high until reset).
    raise_to : in, 17 bits; request : in
        A raise of ``H`` to ``raise_to``. The user holds ``request`` (and ``raise_to``)
        until ``done``, and drops it in the cycle after ``done``: a request is taken when
        ``ready``, idle and ``done`` is low.
    done : out
        One-cycle strobe: the request finished.
    ok : out
        With ``done``: ``high >= raise_to`` now. A ``raise_to <= high`` answers ok without
        flash traffic, 2 cycles after it is taken.
    failed : out
        Sticky until reset: a program did not verify or its WIP never cleared within
        ``poll_limit`` status reads. From then on a raise above ``high`` answers ``done``
        with ``ok = 0`` and writes nothing (one at or below ``high`` is ok).

    What it does
    ------------
    After reset: release from deep power-down (0xAB), wait ``wake_cycles`` (tRES1), then one
    READ from ``offset``, counting leading 0x00 bytes and stopping at the first other byte
    (``H = 8 i +`` its leading cleared bits) or the region's end (``H = 8 region_bytes``).
    A raise to ``t`` with ``high < t <= 8 region_bytes``: for each byte ``k`` from
    ``high // 8`` to ``(t - 1) // 8``, WREN, a PAGE PROGRAM of that one byte
    (``0xFF >> min(8, t - 8 k)``) and RDSR polls until WIP clears; then one READ of those
    bytes, checking every bit that should be cleared is; then ``high := t``. ``t`` above the
    region's limit answers ``ok = 0`` without flash traffic and does not set ``failed``. The
    core never erases and never writes outside ``[offset, offset + region_bytes)``.

    Timing: one bit is ``2 divider`` cycles; a byte ``16 divider + 1``. The boot scan reads
    up to ``region_bytes + 4`` bytes (about 0.29 M cycles for 8192 bytes at ``divider`` 2);
    a one-byte raise is WREN, PAGE PROGRAM, the polls (each 2 bytes) and a 5-byte READ.
    Size: a 40-bit command shift register, the byte engine, the region index, ``high`` and
    the target; every output is a register, the widest comparison is 17 bits.

    Parameters
    ----------
    offset : the region's byte address (24 bits). region_bytes : its size (``H`` up to
    ``8 region_bytes``). divider : SCK half-period in sync cycles (>= 2). poll_limit : RDSR
    reads per program before the part is declared stuck (choose it above the part's
    longest page-program time over one poll, about ``(32 divider + deselect_cycles + 2)``
    cycles). wake_cycles : cycles after 0xAB before the next command (tRES1, 3 us on most
    parts). deselect_cycles : CS# high time between commands (tSHSL).
    """

    flash_sck: Out(1)
    flash_cs_n: Out(1, init=1)
    flash_copi: Out(1)
    flash_cipo: In(1)
    high: Out(HIGH_BITS)
    ready: Out(1)
    raise_to: In(HIGH_BITS)
    request: In(1)
    done: Out(1)
    ok: Out(1)
    failed: Out(1)

    def __init__(self, *, offset: int = REGION_OFFSET, region_bytes: int = REGION_BYTES,
                 divider: int = 2, poll_limit: int = 8192, wake_cycles: int = 256,
                 deselect_cycles: int = 8):
        if not 1 <= region_bytes <= REGION_BYTES:
            raise ConfigError(f"region_bytes must be 1..{REGION_BYTES} (H fits 17 bits), not "
                              f"{region_bytes!r}")
        if not 0 <= offset <= (1 << ADDRESS_BITS) - region_bytes:
            raise ConfigError(f"offset must put the region inside 24-bit addresses, not "
                              f"{offset!r}")
        if divider < 2:
            raise ConfigError(f"divider must be at least 2 (COPI changes one cycle after "
                              f"SCK falls, before it rises), not {divider!r}")
        if poll_limit < 1 or wake_cycles < 1 or deselect_cycles < 1:
            raise ConfigError("poll_limit, wake_cycles and deselect_cycles must be at least "
                              f"1, not {poll_limit!r}, {wake_cycles!r}, {deselect_cycles!r}")
        self.offset = offset
        self.region_bytes = region_bytes
        self.limit = region_limit(region_bytes)
        self.divider = divider
        self.poll_limit = poll_limit
        self.wake_cycles = wake_cycles
        self.deselect_cycles = deselect_cycles
        super().__init__()

    def elaborate(self, platform):
        m = Module()

        # -- the byte engine: one byte out of `header`'s top byte, one byte into `rx` ------
        header = Signal(40, init=OP_RELEASE_POWER_DOWN << 32)   # bytes still to send, MSB first
        header_left = Signal(range(6), init=1)
        send_byte = Signal()        # comb: shift header's top byte out (CS# falls if high)
        read_byte = Signal()        # comb: clock one byte in (COPI low)
        busy = Signal()
        shift = Signal(8)
        rx = Signal(8)
        sck_high = Signal()
        bit = Signal(range(8))
        div = Signal(range(self.divider))

        with m.If(send_byte | read_byte):
            m.d.sync += [shift.eq(Mux(send_byte, header[32:], 0)), busy.eq(1), div.eq(0),
                         bit.eq(0), sck_high.eq(0), self.flash_cs_n.eq(0)]
        with m.Elif(busy):
            m.d.sync += div.eq(Mux(div == self.divider - 1, 0, div + 1))
            with m.If(~sck_high & (div == 0)):
                m.d.sync += self.flash_copi.eq(shift[7])
            with m.If(div == self.divider - 1):
                with m.If(~sck_high):
                    m.d.sync += [self.flash_sck.eq(1), sck_high.eq(1)]
                with m.Else():
                    m.d.sync += [self.flash_sck.eq(0), sck_high.eq(0),
                                 rx.eq(Cat(self.flash_cipo, rx[:7])),
                                 shift.eq(shift << 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.d.sync += busy.eq(0)
        with m.If(send_byte):
            m.d.sync += [header.eq(header << 8), header_left.eq(header_left - 1)]

        # CS# high time between commands (and tRES1 after 0xAB): sending waits for it.
        gap = Signal(range(max(self.wake_cycles, self.deselect_cycles) + 1),
                     init=self.deselect_cycles)
        with m.If(gap != 0):
            m.d.sync += gap.eq(gap - 1)

        def deselect(cycles: int) -> None:
            m.d.sync += [self.flash_cs_n.eq(1), gap.eq(cycles)]

        def sending(then: str) -> None:
            """In a state that sends `header`: the next byte when the engine is free, then
            go to `then` once the last one is out."""
            with m.If(~busy & (gap == 0)):
                with m.If(header_left != 0):
                    m.d.comb += send_byte.eq(1)
                with m.Else():
                    m.next = then

        # -- the region ----------------------------------------------------------------------
        index = Signal(range(self.region_bytes))    # region byte being read or programmed
        last = Signal(range(self.region_bytes))     # the raise's last byte
        target = Signal(HIGH_BITS)
        polls = Signal(range(self.poll_limit))
        address = Signal(ADDRESS_BITS)
        m.d.comb += address.eq(self.offset + index)
        is_last = Signal()
        m.d.comb += is_last.eq(index == last)
        # The byte value for `index`: 0x00 below the last byte, 0xFF >> (target % 8) in it
        # (0x00 when target is a multiple of 8).
        value = Signal(8)
        m.d.comb += value.eq(Mux(is_last & (target[:3] != 0), Const(0xFF, 8) >> target[:3], 0))

        def command(opcode: int, *, with_address: bool = False, data=None) -> None:
            parts = [Const(opcode, 8)]
            if with_address:
                parts.insert(0, address[16:24])
                parts.insert(0, address[8:16])
                parts.insert(0, address[:8])
            if data is not None:
                parts.insert(0, data)
            word = Cat(*parts)
            m.d.sync += [header.eq(word << (40 - len(word))), header_left.eq(len(word) // 8)]

        def finish(ok) -> None:
            m.d.sync += [self.done.eq(1), self.ok.eq(ok)]
            m.next = "IDLE"

        m.d.sync += self.done.eq(0)
        leading_cleared = Signal(3)
        for j in range(8):              # the highest set bit wins (the last If)
            with m.If(rx[j]):
                m.d.comb += leading_cleared.eq(7 - j)

        with m.FSM(init="WAKE"):
            with m.State("WAKE"):
                sending("WAKE_SENT")
            with m.State("WAKE_SENT"):
                deselect(self.wake_cycles)
                command(OP_READ, with_address=True)
                m.next = "SCAN_SEND"
            with m.State("SCAN_SEND"):
                sending("SCAN_READ")
            with m.State("SCAN_READ"):
                m.d.comb += read_byte.eq(1)
                m.next = "SCAN_CHECK"
            with m.State("SCAN_CHECK"):
                with m.If(~busy):
                    with m.If(rx != 0):
                        deselect(self.deselect_cycles)
                        m.d.sync += [self.high.eq(Cat(leading_cleared, index)),
                                     self.ready.eq(1)]
                        m.next = "IDLE"
                    with m.Elif(index == self.region_bytes - 1):
                        deselect(self.deselect_cycles)
                        m.d.sync += [self.high.eq(self.limit), self.ready.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += index.eq(index + 1)
                        m.next = "SCAN_READ"

            with m.State("IDLE"):
                with m.If(self.request & ~self.done):
                    m.d.sync += target.eq(self.raise_to)
                    m.next = "PLAN"
            with m.State("PLAN"):
                with m.If(target <= self.high):
                    finish(1)
                with m.Elif((target > self.limit) | self.failed):
                    finish(0)
                with m.Else():
                    m.d.sync += [index.eq(self.high[3:]), last.eq((target - 1)[3:])]
                    command(OP_WRITE_ENABLE)
                    m.next = "WREN_SEND"

            with m.State("WREN_SEND"):
                sending("WREN_SENT")
            with m.State("WREN_SENT"):
                deselect(self.deselect_cycles)
                command(OP_PAGE_PROGRAM, with_address=True, data=value)
                m.next = "PROGRAM_SEND"
            with m.State("PROGRAM_SEND"):
                sending("PROGRAM_SENT")
            with m.State("PROGRAM_SENT"):
                deselect(self.deselect_cycles)
                command(OP_READ_STATUS)
                m.d.sync += polls.eq(0)
                m.next = "POLL_SEND"
            with m.State("POLL_SEND"):
                sending("POLL_READ")
            with m.State("POLL_READ"):
                m.d.comb += read_byte.eq(1)
                m.next = "POLL_CHECK"
            with m.State("POLL_CHECK"):
                with m.If(~busy):
                    deselect(self.deselect_cycles)
                    with m.If(~(rx & STATUS_WIP).any()):
                        with m.If(is_last):
                            m.d.sync += index.eq(self.high[3:])
                            m.next = "VERIFY_BEGIN"
                        with m.Else():
                            m.d.sync += index.eq(index + 1)
                            command(OP_WRITE_ENABLE)
                            m.next = "WREN_SEND"
                    with m.Elif(polls == self.poll_limit - 1):
                        m.d.sync += self.failed.eq(1)
                        finish(0)
                    with m.Else():
                        m.d.sync += polls.eq(polls + 1)
                        command(OP_READ_STATUS)
                        m.next = "POLL_SEND"

            with m.State("VERIFY_BEGIN"):
                command(OP_READ, with_address=True)
                m.next = "VERIFY_SEND"
            with m.State("VERIFY_SEND"):
                sending("VERIFY_READ")
            with m.State("VERIFY_READ"):
                m.d.comb += read_byte.eq(1)
                m.next = "VERIFY_CHECK"
            with m.State("VERIFY_CHECK"):
                with m.If(~busy):
                    with m.If((rx & ~value).any()):
                        deselect(self.deselect_cycles)
                        m.d.sync += self.failed.eq(1)
                        finish(0)
                    with m.Elif(is_last):
                        deselect(self.deselect_cycles)
                        m.d.sync += self.high.eq(target)
                        finish(1)
                    with m.Else():
                        m.d.sync += index.eq(index + 1)
                        m.next = "VERIFY_READ"
        return m
