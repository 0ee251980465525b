"""ChaCha20 in gateware: the keystream of the encrypted stream
(:class:`spikeforge.hdl.link_cipher.LinkCipher`).

An iterative RFC 8439 block function: the 16-word state in registers, the four quarter-rounds
of a round in parallel, each round in two cycles (half a quarter-round per cycle: two 32-bit
additions in series, so it meets timing at 75 MHz on the ECP5). Diagonal rounds are column
rounds on a state whose rows were rotated (row ``r`` by ``r`` words), so the quarter-round
logic always sees columns and the rotation is wiring plus one multiplexer.
Golden model: :mod:`spikeforge.sim.models.chacha20`.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ChaCha20Block", "RequestLayout", "BLOCK_CYCLES"]

#: A block to compute: the 96-bit nonce (its 12 bytes little-endian) and the block counter.
RequestLayout = data.StructLayout({"nonce": 96, "counter": 32})

_CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
#: Cycles from the cycle a request is taken to the first cycle its block is offered.
BLOCK_CYCLES = 41


def _half_quarter_round(a, b, c, d, second: bool):
    """Half a ChaCha quarter-round: rotations (16, 12) for the first half, (8, 7) for the
    second."""
    rot_d, rot_b = (8, 7) if second else (16, 12)
    a = (a + b)[:32]
    d = (d ^ a).rotate_left(rot_d)
    c = (c + d)[:32]
    b = (b ^ c).rotate_left(rot_b)
    return a, b, c, d


class ChaCha20Block(wiring.Component):
    """One ChaCha20 block (RFC 8439 section 2.3) per request.

    Ports
    -----
    key : in, 256 bits
        The key, its 32 bytes little-endian. Read while a block is computed and offered; a
        constant in the link cipher (synthesis folds it into the logic).
    i : stream of :data:`RequestLayout` in
        Nonce and block counter. Taken when the core is idle, or in the cycle its block is
        taken.
    o : stream of 512 bits out
        The keystream block: byte ``k`` in bits ``8k .. 8k+7`` (the words little-endian, as
        the RFC serializes them). Offered :data:`BLOCK_CYCLES` cycles after the request was
        taken, held until taken.

    Throughput: a block every :data:`BLOCK_CYCLES` cycles when requests wait and blocks are
    taken at once: 64 bytes in 41 cycles, more than one byte per clock. No per-channel state.
    """

    key: In(256)
    i: In(stream.Signature(RequestLayout))
    o: Out(stream.Signature(512))

    def elaborate(self, platform):
        m = Module()
        x = [Signal(32, name=f"x{k}") for k in range(16)]
        nonce = Signal(96)
        counter = Signal(32)
        step = Signal(range(40))   # half-round: bit 0 which half, bit 1 column/diagonal

        def initial(nonce_value, counter_value):
            keys = [self.key.word_select(k, 32) for k in range(8)]
            nonces = [nonce_value.word_select(k, 32) for k in range(3)]
            return list(_CONSTANTS) + keys + [counter_value] + nonces

        start = initial(nonce, counter)
        m.d.comb += self.o.payload.eq(Cat(*[(x[k] + start[k])[:32] for k in range(16)]))

        # Quarter-rounds on the columns; which half by the step's lowest bit.
        second = step[0]
        outputs = [None] * 16
        for j in range(4):
            column = [x[j], x[4 + j], x[8 + j], x[12 + j]]
            first_half = _half_quarter_round(*column, second=False)
            second_half = _half_quarter_round(*column, second=True)
            for row in range(4):
                outputs[4 * row + j] = Mux(second, second_half[row], first_half[row])

        # After a whole round, rotate the rows: row r left by r words after a column round
        # (the diagonals become columns), back after a diagonal round.
        diagonal = step[1]
        def rotated(shift_of_row):
            return [outputs[4 * row + (j + shift_of_row(row)) % 4]
                    for row in range(4) for j in range(4)]
        forward = rotated(lambda row: row)
        back = rotated(lambda row: -row)

        take = self.i.valid & self.i.ready
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(take):
                    m.next = "ROUNDS"
            with m.State("ROUNDS"):
                m.d.sync += step.eq(step + 1)
                with m.If(~second):
                    m.d.sync += [x[k].eq(outputs[k]) for k in range(16)]
                with m.Elif(~diagonal):
                    m.d.sync += [x[k].eq(forward[k]) for k in range(16)]
                with m.Else():
                    m.d.sync += [x[k].eq(back[k]) for k in range(16)]
                with m.If(step == 39):
                    m.d.sync += step.eq(0)
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.o.valid.eq(1), self.i.ready.eq(self.o.ready)]
                with m.If(take):
                    m.next = "ROUNDS"
                with m.Elif(self.o.ready):
                    m.next = "IDLE"
        with m.If(take):
            request = self.i.payload
            loaded = initial(request.nonce, request.counter)
            m.d.sync += [nonce.eq(request.nonce), counter.eq(request.counter), step.eq(0)]
            m.d.sync += [x[k].eq(loaded[k]) for k in range(16)]
        return m
