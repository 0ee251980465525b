"""SipHash-2-4 in gateware: the tag of authenticated commands (:mod:`spikeforge.hdl.control`).

One SipRound per cycle (four 64-bit additions, rotations by wiring, XORs), so a message of
``n`` 64-bit blocks takes ``2 n + 4`` cycles; nothing in it depends on the channel count.
Reference: :func:`spikeforge.firmware.siphash.siphash24`; block model:
:mod:`spikeforge.sim.models.siphash`.
"""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SipHash", "BlockLayout", "sip_round"]

#: One message block as the core takes it: the 64-bit little-endian word (the last one padded
#: with the message length, :func:`spikeforge.firmware.siphash.message_blocks`), whether it
#: is the message's first (the core starts again from the key) and its last (the tag follows).
BlockLayout = data.StructLayout({"block": 64, "first": 1, "last": 1})

_CONSTANTS = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def _rotl(value, bits: int):
    return value.rotate_left(bits)


def sip_round(v0, v1, v2, v3):
    """One SipRound as combinational expressions (the four state words in, four out)."""
    v0 = (v0 + v1)[:64]
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3)[:64]
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3)[:64]
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1)[:64]
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


class SipHash(wiring.Component):
    """SipHash-2-4 of a message given as 64-bit blocks.

    Ports
    -----
    key : in, 128 bits
        The key, k0 in bits 0..63 and k1 in bits 64..127 (the little-endian words of the 16
        key bytes). Read when a ``first`` block is taken; a constant in a build with a fixed
        key, which synthesis folds into the initial state.
    i : stream of :data:`BlockLayout` in
        The message's blocks in order. A block with ``first`` starts a new message from the
        key's initial state, abandoning any message in progress or tag not yet taken;
        ``ready`` is high when the core is idle, waiting for a block, or offering a tag.
        After a block is taken the core is busy for 2 cycles (the two compression rounds),
        and after a ``last`` block for 6 (two compression and four finalization rounds).
    o : stream of 64 bits out
        The tag (``v0 ^ v1 ^ v2 ^ v3``), offered from the cycle after the last round until
        taken or until a new message starts. As an integer it equals
        :func:`~spikeforge.firmware.siphash.siphash24`; its little-endian bytes are the
        reference implementation's output bytes.

    Latency: a one-block message's tag is offered 6 cycles after its block is taken, each
    further block adds 2. No per-channel state.
    """

    key: In(128)
    i: In(stream.Signature(BlockLayout))
    o: Out(stream.Signature(64))

    def elaborate(self, platform):
        m = Module()
        v = [Signal(64, name=f"v{k}") for k in range(4)]
        block = Signal(64)          # the block being compressed (v0 takes it after round 2)
        last = Signal()             # it is the message's last
        rounds = Signal(range(4))   # finalization rounds done

        k0, k1 = self.key[:64], self.key[64:]
        initial = [k0 ^ _CONSTANTS[0], k1 ^ _CONSTANTS[1], k0 ^ _CONSTANTS[2],
                   k1 ^ _CONSTANTS[3]]

        # The round's input: the state, changed as the step needs (taking a block: from the
        # key for a first one, the block into v3; first finalization round: 0xff into v2).
        taking = Signal()
        finalizing_first = Signal()
        source = [Mux(taking & self.i.payload.first, initial[k], v[k]) for k in range(4)]
        round_in = [
            source[0],
            source[1],
            source[2] ^ Mux(finalizing_first, Const(0xFF, 64), 0),
            source[3] ^ Mux(taking, self.i.payload.block, 0),
        ]
        round_out = sip_round(*round_in)

        m.d.comb += self.o.payload.eq(v[0] ^ v[1] ^ v[2] ^ v[3])
        m.d.comb += taking.eq(self.i.valid & self.i.ready)

        def take_block():
            # The first compression round runs in the cycle the block is taken.
            with m.If(taking):
                m.d.sync += [v[k].eq(round_out[k]) for k in range(4)]
                m.d.sync += [block.eq(self.i.payload.block), last.eq(self.i.payload.last)]
                m.next = "COMPRESS"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                take_block()
            with m.State("COMPRESS"):
                # The second compression round, then v0 takes the block.
                m.d.sync += [v[0].eq(round_out[0] ^ block)] + [
                    v[k].eq(round_out[k]) for k in range(1, 4)]
                with m.If(last):
                    m.d.sync += rounds.eq(0)
                    m.next = "FINALIZE"
                with m.Else():
                    m.next = "IDLE"
            with m.State("FINALIZE"):
                m.d.comb += finalizing_first.eq(rounds == 0)
                m.d.sync += [v[k].eq(round_out[k]) for k in range(4)]
                m.d.sync += rounds.eq(rounds + 1)
                with m.If(rounds == 3):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.i.ready.eq(1), self.o.valid.eq(1)]
                with m.If(self.o.ready):
                    m.next = "IDLE"
                take_block()    # a new message may start at once (the tag then is lost)
        return m
