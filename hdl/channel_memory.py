"""Per-channel state for channel-serial cores, in block RAM or, on the iCE40UP, in SPRAM."""

from collections.abc import Callable

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ChannelMemory", "SPRAM_WORD_BITS", "SPRAM_DEPTH", "ICE40UP_SPRAMS",
           "SPRAM_AUTO_BITS", "sb_spram256ka"]

#: Geometry of one iCE40UP single-port RAM (SB_SPRAM256KA): 16 K words of 16 bits.
SPRAM_WORD_BITS = 16
SPRAM_DEPTH = 16384
#: SPRAMs on an iCE40UP5K.
ICE40UP_SPRAMS = 4
#: ``storage="auto"`` uses SPRAM on an iCE40UP from this many bits of state on (8 of the
#: UP5K's 30 block RAMs); smaller state stays in block RAM.
SPRAM_AUTO_BITS = 32 * 1024

#: Makes one 16-bit x 16 K single-port RAM: ``(m, name, address, data_in, write_en)`` ->
#: ``data_out``, registered: the word at ``address`` one cycle after a cycle without
#: ``write_en``, undefined after a write (as the SB_SPRAM256KA).
SpramFactory = Callable[[Module, str, object, object, object], Signal]


def sb_spram256ka(m: Module, name: str, address, data_in, write_en) -> Signal:
    """One SB_SPRAM256KA primitive (hardware only: no simulation model here)."""
    data_out = Signal(SPRAM_WORD_BITS, name=f"{name}_data_out")
    m.submodules[name] = Instance(
        "SB_SPRAM256KA",
        i_ADDRESS=address, i_DATAIN=data_in, i_MASKWREN=Const(0b1111, 4),
        i_WREN=write_en, i_CHIPSELECT=Const(1), i_CLOCK=ClockSignal("sync"),
        i_STANDBY=Const(0), i_SLEEP=Const(0), i_POWEROFF=Const(1),
        o_DATAOUT=data_out,
    )
    return data_out


class ChannelMemory(wiring.Component):
    """State of ``depth`` channels, ``width`` bits each: one read and one write per clock.

    The memory a channel-serial core keeps its per-channel state in (filter state, a
    detector's threshold and snippet ring, a predictor): read channel c's state, compute,
    write channel c's new state a few cycles later, while the next channels are read.

    Ports
    -----
    read_addr, read_en : in
        Read the state of channel ``read_addr`` in a cycle with ``read_en``.
    read_data : out
        The word read, in the cycle after ``read_en`` (registered, like a block RAM's
        synchronous read port); undefined in other cycles.
    write_addr, write_data, write_en : in
        Write ``write_data`` to channel ``write_addr`` in a cycle with ``write_en``.
    conflict : out
        High in a cycle with a read and a write of channels of the same parity (see below).

    Storage (``storage``):

    * ``"block"``: a :class:`amaranth.lib.memory.Memory` (block RAM, or LUT RAM when
      small); any read and write addresses; a read of the channel being written returns
      the old word.
    * ``"spram"``: the iCE40UP's single-port SPRAMs, in two banks — even channels in one,
      odd channels in the other — so that a read and a write can happen in the same cycle
      when they address channels of **different parity**. That is the pattern of a
      read-modify-write pipeline whose write trails its read by an odd number of channels
      (with an even channel count also across the sweep boundary). A same-parity read and
      write in one cycle (``conflict``) writes, and returns an undefined word for the read.
      Up to 32 K channels of up to 32 bits (the UP5K's four SPRAMs).
    * ``"auto"`` (default): ``"spram"`` when elaborated for an iCE40UP platform and the
      state is at least :data:`SPRAM_AUTO_BITS`; ``"block"`` otherwise, and always in
      simulation (no platform) — so RTL benches see block RAM unless they ask for SPRAM
      with a model (``spram_factory``, e.g. :func:`spikeforge.sim.models.spram.spram_model`).

    ``conflict`` is computed for every storage, so that a bench on block RAM proves that a
    core never makes a same-parity access before the core goes into SPRAM.
    """

    def __init__(self, width: int, depth: int, *, storage: str = "auto",
                 spram_factory: SpramFactory | None = None):
        if storage not in ("auto", "block", "spram"):
            raise ValueError(f"storage must be 'auto', 'block' or 'spram', not {storage!r}")
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be positive, not {width} and {depth}")
        self.width = width
        self.depth = depth
        self.storage = storage
        self._spram_factory = spram_factory
        address = unsigned(max(1, (depth - 1).bit_length()))
        super().__init__({
            "read_addr": In(address), "read_en": In(1), "read_data": Out(width),
            "write_addr": In(address), "write_data": In(width), "write_en": In(1),
            "conflict": Out(1),
        })

    @property
    def sprams_needed(self) -> int:
        """SPRAM primitives the ``"spram"`` storage uses (two banks of 16-bit slices)."""
        return 2 * -(-self.width // SPRAM_WORD_BITS)

    def resolve_storage(self, platform) -> str:
        """The storage used when elaborated for ``platform``."""
        if self.storage != "auto":
            return self.storage
        device = str(getattr(platform, "device", "") or "")
        if device.startswith("iCE40UP") and self.width * self.depth >= SPRAM_AUTO_BITS:
            return "spram"
        return "block"

    def elaborate(self, platform):
        storage_kind = self.resolve_storage(platform)
        if storage_kind == "spram" and (self.sprams_needed > ICE40UP_SPRAMS
                                        or -(-self.depth // 2) > SPRAM_DEPTH):
            raise ValueError(
                f"{self.depth} channels of {self.width} bits need {self.sprams_needed} SPRAMs "
                f"of {SPRAM_DEPTH} words in two banks; the iCE40UP has {ICE40UP_SPRAMS}: use "
                f"at most {2 * SPRAM_DEPTH} channels of at most "
                f"{ICE40UP_SPRAMS // 2 * SPRAM_WORD_BITS} bits, or storage='block'")
        m = Module()
        m.d.comb += self.conflict.eq(self.read_en & self.write_en &
                                     (self.read_addr[0] == self.write_addr[0]))
        if storage_kind == "block":
            m.submodules.storage = storage = memory.Memory(
                shape=self.width, depth=self.depth, init=[])
            write = storage.write_port()
            read = storage.read_port()  # not transparent: a same-cycle read sees the old word
            m.d.comb += [
                write.addr.eq(self.write_addr), write.data.eq(self.write_data),
                write.en.eq(self.write_en),
                read.addr.eq(self.read_addr), read.en.eq(self.read_en),
                self.read_data.eq(read.data),
            ]
            return m

        factory = self._spram_factory or sb_spram256ka
        bank_outputs = []
        for bank in range(2):
            writing = Signal(name=f"bank{bank}_writing")
            address = Signal(14, name=f"bank{bank}_address")
            m.d.comb += [
                writing.eq(self.write_en & (self.write_addr[0] == bank)),
                address.eq(Mux(writing, self.write_addr[1:], self.read_addr[1:])),
            ]
            slices = []
            for index in range(0, self.width, SPRAM_WORD_BITS):
                data_in = Signal(SPRAM_WORD_BITS, name=f"bank{bank}_in{index}")
                m.d.comb += data_in.eq(self.write_data[index:index + SPRAM_WORD_BITS])
                slices.append(factory(m, f"spram_bank{bank}_bits{index}", address, data_in,
                                      writing))
            word = Signal(len(slices) * SPRAM_WORD_BITS, name=f"bank{bank}_word")
            m.d.comb += word.eq(Cat(*slices))
            bank_outputs.append(word)
        read_bank = Signal()
        with m.If(self.read_en):
            m.d.sync += read_bank.eq(self.read_addr[0])
        m.d.comb += self.read_data.eq(Mux(read_bank, bank_outputs[1], bank_outputs[0]))
        return m
