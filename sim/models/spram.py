"""A behavioural model of the iCE40UP SPRAM (SB_SPRAM256KA) for Amaranth simulation.

As Yosys' ``cells_sim.v`` describes the primitive: 16 K words of 16 bits, one port; on a
clock edge with ``WREN`` the word is written and ``DATAOUT`` becomes undefined (here: a
fixed garbage pattern, so a test notices if it is used), otherwise ``DATAOUT`` becomes the
word at ``ADDRESS``. Pass :func:`spram_model` as ``spram_factory`` of
:class:`spikeforge.hdl.channel_memory.ChannelMemory` to simulate its SPRAM storage.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory

__all__ = ["spram_model", "GARBAGE"]

#: What the model's DATAOUT holds after a write cycle (the primitive's is undefined).
GARBAGE = 0xA5C3


def spram_model(m: Module, name: str, address, data_in, write_en) -> Signal:
    """One SB_SPRAM256KA, modelled with a ``lib.memory.Memory`` (same interface as
    :func:`spikeforge.hdl.channel_memory.sb_spram256ka`)."""
    from spikeforge.hdl.channel_memory import SPRAM_DEPTH, SPRAM_WORD_BITS

    m.submodules[name] = storage = memory.Memory(shape=SPRAM_WORD_BITS, depth=SPRAM_DEPTH,
                                                 init=[])
    write = storage.write_port()
    read = storage.read_port(domain="comb")
    data_out = Signal(SPRAM_WORD_BITS, name=f"{name}_data_out")
    m.d.comb += [
        write.addr.eq(address), write.data.eq(data_in), write.en.eq(write_en),
        read.addr.eq(address),
    ]
    m.d.sync += data_out.eq(Mux(write_en, GARBAGE, read.data))
    return data_out
