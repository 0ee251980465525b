"""Frame bytes in block RAM, read through two lockstep stages that end at flip-flops."""

from amaranth.hdl import Array, Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.errors import ConfigError

from .layouts import FrameByteLayout

__all__ = ["FrameRam", "BANK_BYTES"]

#: Frame bytes (9 bits with ``last``) one ECP5 DP16KD block holds.
BANK_BYTES = 2048


class FrameRam(wiring.Component):
    """``depth`` frame bytes in block RAM: one write port, one two-stage read pipeline.

    Write: a byte offered on ``write_addr``/``write_data`` with ``write_en`` in cycle t is
    registered and written into the block RAM at the end of cycle t+1, so the RAM's write
    ports (and yosys' read/write collision logic, which compares the two addresses) start
    at flip-flops. Read: while ``advance`` is high, the byte at ``read_addr`` enters the
    first stage (the block RAM's output) and the first stage's byte enters the second;
    ``read_data`` is the second stage's byte, so a byte addressed in cycle t is at
    ``read_data`` from cycle t+2 if ``advance`` is high in t and t+1. Both stages hold while
    ``advance`` is low. A byte offered for writing in cycle t may be read from cycle t+2
    (earlier reads of its address are undefined: callers never make one).

    Why banks: a DP16KD holds 2048 x 9 bits. Given one deeper memory, yosys builds it of
    blocks split by address and multiplexes their outputs before the first flip-flop; on
    the 25F at speed grade 6 a block's unregistered output (5.8 ns) plus that multiplexer
    and its routing fill the whole 8 ns of 125 MHz. Here each bank of 2048 bytes feeds its
    own second-stage register (placed by the block, fed by nothing else), and the bank is
    chosen after those registers: ``read_data`` is one LUT level from flip-flops. Same
    block RAM count as yosys' own split. The RAM is marked ``no_rw_check`` (reads never
    meet writes, see above), so yosys adds no collision logic at its output either.
    """

    def __init__(self, depth: int):
        if depth < 1 or depth & (depth - 1):
            raise ConfigError(f"frame RAM depth must be a power of two, not {depth}")
        self._depth = depth
        abits = max(1, (depth - 1).bit_length())
        super().__init__({
            "write_addr": In(abits), "write_data": In(FrameByteLayout), "write_en": In(1),
            "read_addr": In(abits), "advance": In(1),
            "read_data": Out(FrameByteLayout),
        })

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(FrameByteLayout).width
        bank_depth = min(self._depth, BANK_BYTES)
        bank_bits = max(1, (bank_depth - 1).bit_length())
        banks = self._depth // bank_depth
        staged = Array(Signal(width, name=f"staged_{k}", reset_less=True) for k in range(banks))
        write_addr = Signal.like(self.write_addr, reset_less=True)
        write_data = Signal(width, reset_less=True)
        write_en = Signal()
        first_bank = Signal(range(banks))               # bank of the first stage's byte
        second_bank = Signal(range(banks))              # bank of the second stage's byte
        for k in range(banks):
            # An asynchronous read port and the register after it, which yosys merges into
            # the block RAM's own read register: that way it honours ``no_rw_check`` (a
            # synchronous port gets read/write collision logic after the RAM's output,
            # a LUT level that costs 0.3 ns and a route).
            bank = Memory(shape=width, depth=bank_depth, init=[], attrs={"no_rw_check": 1})
            m.submodules[f"bank_{k}"] = bank
            write, read = bank.write_port(), bank.read_port(domain="comb")
            first = Signal(width, name=f"first_{k}", reset_less=True)
            # The bank is chosen after the write register (its input is the callers'
            # longest path).
            here = (write_addr[bank_bits:] == k) if banks > 1 else 1
            m.d.comb += [
                write.addr.eq(write_addr[:bank_bits]),
                write.data.eq(write_data),
                write.en.eq(write_en & here),
                read.addr.eq(self.read_addr[:bank_bits]),
            ]
            with m.If(self.advance):
                m.d.sync += [first.eq(read.data), staged[k].eq(first)]
        m.d.sync += [write_addr.eq(self.write_addr), write_data.eq(self.write_data.as_value()),
                     write_en.eq(self.write_en)]
        if banks > 1:
            with m.If(self.advance):
                m.d.sync += [first_bank.eq(self.read_addr[bank_bits:]),
                             second_bank.eq(first_bank)]
        m.d.comb += self.read_data.as_value().eq(staged[second_bank])
        return m
