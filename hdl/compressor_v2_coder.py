"""The v2 coder's range coder in gateware, one entry (a sample's symbol and raw bits, or a
verbatim sample's 16 bits) per clock, and the whole v2 coder (symbol stage + blocks and
the running budget + range coder)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.compression_v2 import (
    ACCOUNT_FLOOR_EIGHTHS,
    BUDGET_SLACK_EIGHTHS,
    CDF_BITS,
    ESCAPE,
    LENGTH_BITS,
    CodecV2Config,
    log2_floor_eighths,
)

from .compressor import bit_length
from .compressor_v2 import CompressorV2Symbols, SampleInLayout, loaded_ports

__all__ = ["RangeEntryLayout", "CodedTokensLayout", "RangeCoderV2", "CompressorV2",
           "ENTRY_SAMPLE", "ENTRY_VERBATIM", "ENTRY_FLUSH", "SLOTS", "RAW_PIECES",
           "ACCOUNT_BITS"]

ENTRY_SAMPLE, ENTRY_VERBATIM, ENTRY_FLUSH = 0, 1, 2
#: Raw pieces after a symbol, in four groups at fixed places: an ESCAPE's length of
#: zigzag(e) (1 piece: LENGTH_BITS), a bucket's up to 17 bits or the escape's zigzag(e)
#: below its leading one (8 + 8 + 1; a verbatim sample's 16 bits), the escape's length of
#: the offset (1), the shift's up to 12 bits or the escape's offset's up to 16 (8 + 8).
#: An unused piece has 0 bits: it leaves the range and the low as they are.
RAW_PIECES = 7
_GROUPS = ((0, 1), (1, 3), (4, 1), (5, 2))       # (first piece, pieces)
#: Bytes a sample can shift out: 2 after the symbol, 1 after each raw piece (a flush: 5).
SLOTS = 2 + RAW_PIECES
_RUN_BITS = 32
#: Fewest bits of (range >> 15) * frequency: range >= 2**24, frequency >= 1.
_PRODUCT_MIN_BITS = 10
#: A coded sample's cost beyond raw, eighths of a bit (cost_eighths with the total 2**15,
#: less 128): 8 (high_count + low_count) + 122 - log2_floor_eighths(frequency) + 1 - 128,
#: -125 .. 8 * 43 - 5 (an ESCAPE: 2 x 5 length bits, 17 + 16 below the leading ones).
_COST_CONST = log2_floor_eighths(1 << CDF_BITS) + 2 + 1 - 128
_MAX_DELTA = 8 * (2 * LENGTH_BITS + 17 + 16) + _COST_CONST
_MIN_DELTA = _COST_CONST - log2_floor_eighths(1 << CDF_BITS)
_DELTA_BITS = max(_MAX_DELTA.bit_length(), (-_MIN_DELTA - 1).bit_length()) + 1
#: Width of the running budget's account (signed): ACCOUNT_FLOOR_EIGHTHS .. the slack plus
#: one coded sample's most.
ACCOUNT_BITS = max((-ACCOUNT_FLOOR_EIGHTHS - 1).bit_length(),
                   (BUDGET_SLACK_EIGHTHS + _MAX_DELTA).bit_length()) + 1


class RangeEntryLayout(data.StructLayout):
    """One range-coder entry: ``kind`` ENTRY_SAMPLE (code ``low``/``frequency`` of 2**15,
    then ``high_count`` raw bits ``high_bits``, then ``low_count`` raw bits ``low_bits``;
    with ``escape``, LENGTH_BITS raw bits ``length_e`` before ``high_bits`` and
    ``length_o`` before ``low_bits``),
    ENTRY_VERBATIM (a verbatim sample: no symbol, its 16 bits ``high_bits[:16]`` raw in two
    8-bit pieces; the other fields are ignored) or ENTRY_FLUSH (the coder's last 5
    bytes; the coder then restarts). ``block_end`` marks a block's last entry (a flush's
    when the block ends with one)."""

    def __init__(self):
        super().__init__({
            "kind": unsigned(2), "low": unsigned(CDF_BITS), "frequency": unsigned(CDF_BITS + 1),
            "escape": 1, "length_e": unsigned(LENGTH_BITS),
            "high_bits": unsigned(17), "high_count": unsigned(5),
            "length_o": unsigned(LENGTH_BITS),
            "low_bits": unsigned(16), "low_count": unsigned(5), "block_end": 1,
        })


class _Token(data.StructLayout):
    def __init__(self):
        super().__init__({"valid": 1, "skip": 1, "byte": 8, "run": _RUN_BITS, "carry": 1})


class CodedTokensLayout(data.StructLayout):
    """An entry's output bytes as up to :data:`SLOTS` tokens, in order: a valid token is
    ``byte`` (unless ``skip``: the stream's first, always 0, is not sent) followed by
    ``run`` bytes of 0xFF (0x00 when ``carry``). ``block_end``: the entry ended a block (the
    block's bytes end with this entry's); ``flush``: the entry was the coder's flush (the
    end of the block before a sync block, or of the stream), after which the coder
    restarted."""

    def __init__(self):
        super().__init__({"tokens": data.ArrayLayout(_Token(), SLOTS), "block_end": 1,
                          "flush": 1})



def _pieces(count: int) -> list[int]:
    """Sizes of the raw pieces of ``count`` bits, most significant first."""
    out = []
    while count > 0:
        k = min(count, 8)
        count -= k
        out.append(k)
    return out


def _register_stage(m: Module, advance, values: dict, valid, prefix: str, *,
                    out_valid: Signal | None = None) -> dict:
    """One lockstep pipeline stage: each of ``values`` and ``valid`` registered while
    ``advance`` (names ``{prefix}_{name}``); returns the registers by name, with "valid"."""
    out = {}
    for name, value in values.items():
        reg = Signal(value.shape(), name=f"{prefix}_{name}")
        with m.If(advance):
            m.d.sync += reg.eq(value)
        out[name] = reg
    if out_valid is None:
        out_valid = Signal(name=f"{prefix}_valid")
    with m.If(advance):
        m.d.sync += out_valid.eq(valid)
    out["valid"] = out_valid
    return out


class RangeCoderV2(wiring.Component):
    """The v2 range coder (32-bit range, LZMA-style carry), bit exact with the model's
    (:func:`spikeforge.sim.models.compressor_v2_stages.range_code_v2`), one entry per clock.

    Ports
    -----
    i : stream of :class:`RangeEntryLayout` in
    o : stream of :class:`CodedTokensLayout` out, one per entry, in order.

    How one entry per clock is reached (the formulation of :func:`~spikeforge.sim.models.
    compressor_v2_stages.range_step_v2`): stage I registers the entry (nothing of the
    sender's logic reaches the coder's), stage K splits its raw bits into pieces (up to
    :data:`RAW_PIECES` of up to 8 bits, at fixed places: an unused piece has 0 bits) and
    stage P computes each piece's effect for every bit length of the range (a chained
    table, over stages PA, PB and P: three links at most a stage). The range and the low are two
    separate loops. The
    range loop (stage R) is one multiply (``(range >> 15) * frequency``) and one shift: the
    normalisation and the raw pieces only truncate and shift the range, and how depends
    only on the product's bit length, so stages P and P2 precompute the shift for each of
    its 23 possible lengths and R selects the right one; stage S then picks each raw
    piece's (t, s) by the normalised range's bit length (feed-forward, outside the loop).
    The additions to low (``r_i * piece_i``, stage M) never depend on low; they are summed
    per byte slot (stage Q), and stage L adds low into the first three slots' prefix sums
    (the others no longer see it), giving each slot's carry and byte and the new low in two
    adder delays. Stage E runs the model's cache / 0xFF-run logic over the slots.

    A verbatim entry (the running budget's, see :class:`CompressorV2`) has no symbol: K
    splits its 16 bits into two 8-bit pieces, R's range loop takes ``range & ~0xFF`` (each
    piece multiplies by ``range >> 8`` and shifts one byte out; a select in front of the
    register, as the block flag's old path was, no deeper than the sample's path), and the
    low loop sees an addition of 0 that shifts nothing, then the pieces on the range as it
    is (``ranged`` = range: already normalised).

    A flush entry (ENTRY_FLUSH) shifts 5 bytes out of the low (no additions), which leaves
    the low 0, the cache 0 and no 0xFF run: the model's restart but for the range (R sets
    it to 0xFFFFFFFF) and the first byte's skip (E sets it again). So the entries after a
    flush are coded as a new stream's (the sync blocks', and after the stream's end).
    """

    i: In(stream.Signature(RangeEntryLayout()))
    o: Out(stream.Signature(CodedTokensLayout()))

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        def stage(values: dict, valid, prefix: str) -> dict:
            return _register_stage(m, advance, values, valid, prefix)

        # -- I: the entry, registered (a register slice: the path from the sender's logic,
        # e.g. CompressorV2's block framing, ends here instead of in stage P's table) -------
        i_stage = stage({"entry": self.i.payload.as_value()}, self.i.valid, "i")
        entry = RangeEntryLayout()(i_stage["entry"])

        # -- K: the raw pieces, each group at its fixed places (a verbatim sample's: its 16
        # bits, 8 + 8, in the second group) ---------------------------------------------
        verbatim_in = Signal()
        escape_in = Signal()
        m.d.comb += [verbatim_in.eq(entry.kind == ENTRY_VERBATIM),
                     escape_in.eq(entry.escape & ~verbatim_in)]
        groups = (
            (Mux(escape_in, LENGTH_BITS, 0), entry.length_e, LENGTH_BITS),
            (Mux(verbatim_in, 16, entry.high_count), entry.high_bits, 17),
            (Mux(escape_in, LENGTH_BITS, 0), entry.length_o, LENGTH_BITS),
            (Mux(verbatim_in, 0, entry.low_count), entry.low_bits, 16),
        )
        piece_k = [Signal(4, name=f"piece_k{i}") for i in range(RAW_PIECES)]
        piece_v = [Signal(8, name=f"piece_v{i}") for i in range(RAW_PIECES)]
        for (first, _), (count, bits, most) in zip(_GROUPS, groups):
            with m.Switch(count):
                for n in range(1, most + 1):
                    with m.Case(n):
                        rest = n
                        for i, k in enumerate(_pieces(n)):
                            rest -= k
                            m.d.comb += [piece_k[first + i].eq(k),
                                         piece_v[first + i].eq((bits >> rest)[:k])]
        k_values = {"kind": entry.kind, "low": entry.low, "frequency": entry.frequency,
                    "block_end": entry.block_end}
        for i in range(RAW_PIECES):
            k_values[f"k{i}"] = piece_k[i]
            k_values[f"v{i}"] = piece_v[i]
        kreg = stage(k_values, i_stage["valid"], "k")
        piece_k = [kreg[f"k{i}"] for i in range(RAW_PIECES)]

        # -- PA, P: the pieces' effect on the range for each bit length (from K's registers:
        # after the pieces, the chained table was the end of the whole coder's critical
        # path at ac4ba7b) ------------------------------------------------------------------
        # For a symbol whose range after normalisation has bit length 25 + b: each piece's
        # (t, s) (its multiplier is range >> t << s), the bytes it shifts, and the final
        # (t, s).
        # The chain over the 5 pieces is long (about 12 carry chains at 1f96777, the whole
        # coder's critical path): at most three links a stage.
        tables = {}

        def chain(b: int, i: int, t, s, bits, k):
            t_cut = Signal(6, name=f"tcut{b}_{i}")
            s_cut = Signal(5, name=f"scut{b}_{i}")
            shift = Signal(name=f"n{b}_{i}")
            t_next = Signal(6, name=f"t{b}_{i}")
            s_next = Signal(5, name=f"s{b}_{i}")
            bits_next = Signal(7, name=f"bits{b}_{i}")
            m.d.comb += [
                t_cut.eq(Mux(s >= k, t, t + k - s)),
                s_cut.eq(Mux(s >= k, s - k, 0)),
                shift.eq((k != 0) & (bits - k <= 24)),
                t_next.eq(t_cut),
                s_next.eq(s_cut + Mux(shift, 8, 0)),
                bits_next.eq(bits - k + Mux(shift, 8, 0)),
            ]
            tables[(b, i)] = (t_cut, s_cut, shift)
            return t_next, s_next, bits_next

        # Pieces 0-2 in stage PA, 3-4 in PB, 5-6 in P (at most three links a stage).
        carried = ("kind", "low", "frequency", "block_end")
        prev = kreg
        for name, (first, last) in zip(("pa", "pb", "p"), ((0, 3), (3, 5), (5, 7))):
            values = {key: prev[key] for key in carried}
            for i in range(RAW_PIECES):
                values[f"v{i}"] = prev[f"v{i}"]
            for i in range(last, RAW_PIECES):
                values[f"k{i}"] = prev[f"k{i}"]
            for b in range(8):
                for i in range(first):
                    for key in (f"t{b}_{i}", f"s{b}_{i}", f"n{b}_{i}"):
                        values[key] = prev[key]
                if first == 0:
                    t, s, bits = Const(0, 6), Const(0, 5), Const(25 + b, 7)
                else:
                    t, s, bits = prev[f"tt{b}"], prev[f"ss{b}"], prev[f"bb{b}"]
                for i in range(first, last):
                    t, s, bits = chain(b, i, t, s, bits, prev[f"k{i}"])
                    t_cut, s_cut, shift = tables[(b, i)]
                    values[f"t{b}_{i}"], values[f"s{b}_{i}"] = t_cut, s_cut
                    values[f"n{b}_{i}"] = shift
                values[f"tt{b}"], values[f"ss{b}"], values[f"bb{b}"] = t, s, bits
            prev = stage({k: _as_signal(m, v, f"{name}in_{k}") for k, v in values.items()},
                         prev["valid"], name)
        p = prev

        # -- P2: for each bit length of the symbol's product, the final range's shift ------
        # The product (range >> 15) * frequency has 10..32 bits; with bp bits it is
        # normalised by n = 0, 1 or 2 bytes to a range of 25 + b bits, b = bp + 8n - 25, and
        # the raw pieces make that (range >> t_b) << s_b: the product itself, its bits below
        # cut = max(t_b - 8n, 0) cleared, shifted right by right = 32 - (s_b + 8n - t_b)
        # from 32 bits up. Both are known before the product, so the range loop is the
        # multiply, one shift per bit length (its amount early) and a select.
        p2_values = {name: value for name, value in p.items() if name != "valid"}
        for bp in range(_PRODUCT_MIN_BITS, 33):
            n = 0 if bp >= 25 else (1 if bp >= 17 else 2)
            b = bp + 8 * n - 25
            t_b, s_b = p[f"tt{b}"], p[f"ss{b}"]
            cut = Signal(7, name=f"cut{bp}")
            keep = Signal(bp, name=f"keep{bp}")       # the product's bits that stay
            right = Signal(7, name=f"right{bp}")
            m.d.comb += [cut.eq(Mux(t_b > 8 * n, t_b - 8 * n, 0)),
                         keep.eq(~((Const(1, bp + 1) << cut) - 1)[:bp]),
                         right.eq(32 - s_b - 8 * n + t_b)]
            p2_values[f"keep{bp}"] = keep
            p2_values[f"right{bp}"] = right
        p = stage(p2_values, p["valid"], "p2")

        # -- R: the range loop -------------------------------------------------------------
        rng = Signal(32, init=0xFFFFFFFF)
        r_sym = Signal(17)
        product = Signal(33)
        m.d.comb += [r_sym.eq(rng >> CDF_BITS), product.eq(r_sym * p["frequency"])]
        n_sym = Signal(2)
        m.d.comb += n_sym.eq(Mux(product[24:].any(), 0, Mux(product[16:].any(), 1, 2)))
        ranged = Signal(32)
        m.d.comb += ranged.eq(product << (n_sym * 8))
        # One shifter per bit length, then an AND-OR select (not a switch: synthesis would
        # share the shifters and put the late select in front of one).
        after_sample = Signal(32)
        chosen = []
        for bp in range(_PRODUCT_MIN_BITS, 33):
            kept = product[:bp] & p[f"keep{bp}"]
            candidate = Signal(32, name=f"candidate{bp}")
            m.d.comb += candidate.eq((Cat(Const(0, 32), kept) >> p[f"right{bp}"])[:32])
            # bit length bp, as a one-hot term (a priority encoder here would be a chain)
            is_length = product[bp - 1] & ~product[bp:32].any()
            chosen.append(candidate & is_length.replicate(32))
        m.d.comb += after_sample.eq(_or_all(chosen))
        # A verbatim sample has no symbol: its two 8-bit pieces each multiply by
        # range >> 8 and shift one byte out, leaving the range's low byte cleared (no
        # deeper than the sample's path: the bypass is the select in front of the register).
        verbatim = Signal()
        m.d.comb += verbatim.eq(p["kind"] == ENTRY_VERBATIM)
        with m.If(advance & p["valid"]):
            with m.Switch(p["kind"]):
                with m.Case(ENTRY_SAMPLE):
                    m.d.sync += rng.eq(after_sample)
                with m.Case(ENTRY_VERBATIM):
                    m.d.sync += rng.eq(Cat(Const(0, 8), rng[8:]))
                with m.Case(ENTRY_FLUSH):
                    m.d.sync += rng.eq(0xFFFFFFFF)      # the coder restarts
        # For the low loop a verbatim sample is an addition of 0 that shifts nothing,
        # followed by its pieces on the range as it is (normalised: 25..32 bits).
        r_values = {"kind": p["kind"], "block_end": p["block_end"],
                    "ranged": Mux(verbatim, rng, ranged), "r_sym": r_sym,
                    "low": Mux(verbatim, 0, p["low"]), "n_sym": Mux(verbatim, 0, n_sym)}
        for i in range(RAW_PIECES):
            r_values[f"v{i}"] = p[f"v{i}"]
            for b in range(8):
                for name in (f"t{b}_{i}", f"s{b}_{i}", f"n{b}_{i}"):
                    r_values[name] = p[name]
        r = stage(r_values, p["valid"], "r")

        # -- S: each piece's (t, s) by the normalised range's bit length 25 + b ------------
        # Feed-forward, so a stage of its own: selected in R it followed the multiply and
        # the product's bit length (the critical path at 69ca411). The normalised range has
        # 25..32 bits, so b is the position of its top bit above bit 24.
        b_index = Signal(3)
        m.d.comb += b_index.eq(bit_length(m, r["ranged"][24:], 8, "ranged_bits") - 1)
        s_values = {name: r[name] for name in ("kind", "block_end", "ranged", "r_sym", "low",
                                               "n_sym")}
        for i in range(RAW_PIECES):
            t_i, s_i, n_i = (Signal(6, name=f"sel_t{i}"), Signal(5, name=f"sel_s{i}"),
                             Signal(name=f"sel_n{i}"))
            with m.Switch(b_index):
                for b in range(8):
                    with m.Case(b):
                        m.d.comb += [t_i.eq(r[f"t{b}_{i}"]), s_i.eq(r[f"s{b}_{i}"]),
                                     n_i.eq(r[f"n{b}_{i}"])]
            s_values.update({f"t{i}": t_i, f"s{i}": s_i, f"n{i}": n_i, f"v{i}": r[f"v{i}"]})
        r = stage(s_values, r["valid"], "s")

        # -- M1: the pieces' multipliers; M2: the additions --------------------------------
        m1_values = {"kind": r["kind"], "block_end": r["block_end"], "r_sym": r["r_sym"],
                     "low": r["low"], "n_sym": r["n_sym"]}
        for i in range(RAW_PIECES):
            multiplier = Signal(32, name=f"multiplier{i}")
            m.d.comb += multiplier.eq((r["ranged"] >> r[f"t{i}"]) << r[f"s{i}"])
            m1_values.update({f"r{i}": multiplier, f"n{i}": r[f"n{i}"], f"v{i}": r[f"v{i}"]})
        m1 = stage(m1_values, r["valid"], "m1")

        # ops: op 0 the symbol (a verbatim sample: 0, no shift), ops 1.. the raw pieces:
        # (addition, shifts); a flush has none (masked below)
        is_flush = Signal()
        m.d.comb += is_flush.eq(m1["kind"] == ENTRY_FLUSH)
        additions = []
        shifts = []
        a0 = Signal(33, name="addition0")
        n0 = Signal(2, name="shifts0")
        m.d.comb += [a0.eq(m1["r_sym"] * m1["low"]), n0.eq(m1["n_sym"])]
        additions.append(a0)
        shifts.append(n0)
        for i in range(RAW_PIECES):
            a = Signal(33, name=f"addition{i + 1}")
            n = Signal(1, name=f"shifts{i + 1}")
            m.d.comb += [a.eq(m1[f"r{i}"] * m1[f"v{i}"]), n.eq(m1[f"n{i}"])]
            additions.append(a)
            shifts.append(n)
        m2_values = {"kind": m1["kind"], "block_end": m1["block_end"]}
        for i, (a, n) in enumerate(zip(additions, shifts)):
            m2_values[f"a{i}"] = Mux(is_flush, 0, a)
            m2_values[f"n{i}"] = Mux(is_flush, 0, n)
        m2 = stage({k: _as_signal(m, v, f"m2in_{k}") for k, v in m2_values.items()},
                   m1["valid"], "m2")

        # -- Q: additions per byte slot, prefix sums mod 2**24 -----------------------------
        ops = len(additions)
        before = []            # shifts before op i
        total = Const(0, 4)
        for i in range(ops):
            before.append(total)
            c = Signal(4, name=f"cum{i}")
            m.d.comb += c.eq(total + m2[f"n{i}"])
            total = c
        count = Signal(4)
        m.d.comb += count.eq(Mux(m2["kind"] == ENTRY_FLUSH, 5, total))
        slot_sums = []
        for j in range(1, SLOTS + 1):
            terms = [Mux(before[i] + 1 == j, m2[f"a{i}"], 0) for i in range(ops)]
            a_j = Signal(33, name=f"slot_add{j}")
            m.d.comb += a_j.eq(sum(terms))
            slot_sums.append(a_j)
        tail_terms = [Mux(before[i] + 1 > count, m2[f"a{i}"], 0) for i in range(ops)]
        tail = Signal(33)
        m.d.comb += tail.eq(sum(tail_terms))
        q_values = {"kind": m2["kind"], "block_end": m2["block_end"], "count": count,
                    "tail": tail}
        for j in range(1, SLOTS + 1):
            q_values[f"a{j}"] = slot_sums[j - 1]
            # Q_j mod 2**24 = A_j + A_{j-1} 2**8 + A_{j-2} 2**16 (mod 2**24)
            prefix = Signal(24, name=f"prefix{j}")
            terms = [slot_sums[j - 1]]
            if j >= 2:
                terms.append(slot_sums[j - 2] << 8)
            if j >= 3:
                terms.append(slot_sums[j - 3] << 16)
            m.d.comb += prefix.eq(sum(terms))
            q_values[f"q{j}"] = prefix
        q = stage(q_values, m2["valid"], "q")

        # -- L: the low loop -----------------------------------------------------------------
        low = Signal(33)
        partial = []          # PS_j mod 2**24
        for j in range(1, SLOTS + 1):
            ps = Signal(24, name=f"ps{j}")
            if j <= 3:
                m.d.comb += ps.eq((low << (8 * (j - 1))) + q[f"q{j}"])
            else:
                m.d.comb += ps.eq(q[f"q{j}"])
            partial.append(ps)
        slot_y = []
        for j in range(1, SLOTS + 1):
            y = Signal(33, name=f"y{j}")
            if j == 1:
                m.d.comb += y.eq(low + q["a1"])
            else:
                m.d.comb += y.eq((partial[j - 2] << 8) + q[f"a{j}"])
            slot_y.append(y)
        last_partial = Signal(24)
        with m.Switch(q["count"]):
            for j in range(1, SLOTS + 1):
                with m.Case(j):
                    m.d.comb += last_partial.eq(partial[j - 1])
        with m.If(advance & q["valid"]):
            m.d.sync += low.eq(Mux(q["count"] == 0, low + q["tail"],
                                   (last_partial << 8) + q["tail"]))
        l_values = {"kind": q["kind"], "block_end": q["block_end"], "count": q["count"]}
        for j in range(1, SLOTS + 1):
            l_values[f"carry{j}"] = slot_y[j - 1][32]
            l_values[f"byte{j}"] = slot_y[j - 1][24:32]
        lreg = stage({k: _as_signal(m, v, f"lin_{k}") for k, v in l_values.items()},
                     q["valid"], "l")

        # -- E: the cache and 0xFF run over the slots ------------------------------------------
        cache = Signal(8)
        run = Signal(_RUN_BITS)
        skip = Signal(init=1)
        payload = self.o.payload
        flushed_before = Const(0, 1)
        cache_j = cache
        since = Const(0, 4)          # slots that did not flush since the last that did
        tokens = []
        for j in range(1, SLOTS + 1):
            present = Signal(name=f"present{j}")
            flushes = Signal(name=f"flushes{j}")
            carry = lreg[f"carry{j}"]
            byte = lreg[f"byte{j}"]
            m.d.comb += [present.eq(lreg["count"] >= j),
                         flushes.eq(present & ((byte != 0xFF) | carry))]
            token_run = Signal(_RUN_BITS, name=f"token_run{j}")
            m.d.comb += token_run.eq(Mux(flushed_before, since, run + since))
            tokens.append({"valid": flushes, "skip": skip & ~flushed_before,
                           "byte": (cache_j + carry)[:8], "run": token_run, "carry": carry})
            next_cache = Signal(8, name=f"cache{j}")
            m.d.comb += next_cache.eq(Mux(flushes, byte, cache_j))
            next_since = Signal(4, name=f"since{j}")
            m.d.comb += next_since.eq(Mux(flushes, 0, Mux(present, since + 1, since)))
            next_flushed = Signal(name=f"flushed{j}")
            m.d.comb += next_flushed.eq(flushed_before | flushes)
            cache_j, since, flushed_before = next_cache, next_since, next_flushed
        with m.If(advance & lreg["valid"]):
            m.d.sync += [cache.eq(cache_j),
                         run.eq(Mux(flushed_before, since, run + since))]
            with m.If(lreg["kind"] == ENTRY_FLUSH):
                m.d.sync += skip.eq(1)          # the restarted coder's first byte
            with m.Elif(flushed_before):
                m.d.sync += skip.eq(0)
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(lreg["valid"]),
                         payload.block_end.eq(lreg["block_end"]),
                         payload.flush.eq(lreg["kind"] == ENTRY_FLUSH)]
            for j, token in enumerate(tokens):
                m.d.sync += [payload.tokens[j][name].eq(value) for name, value in token.items()]
        return m


def _or_all(values: list):
    """OR of ``values`` as a balanced tree."""
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def _as_signal(m: Module, value, name: str) -> Signal:
    if isinstance(value, Signal):
        return value
    out = Signal(value.shape(), name=name)
    m.d.comb += out.eq(value)
    return out


class CompressorV2(wiring.Component):
    """The v2 coder: :class:`~spikeforge.hdl.compressor_v2.CompressorV2Symbols`, the block
    framing with the running budget, and :class:`RangeCoderV2`; bit exact with the golden
    model (:func:`spikeforge.sim.models.compressor_v2.encode_v2_stream`, split as
    :func:`~spikeforge.sim.models.compressor_v2_stages.range_code_v2` of
    :func:`~spikeforge.sim.models.compressor_v2_stages.symbol_stream_v2`).

    Ports
    -----
    i : stream of :class:`~spikeforge.hdl.compressor_v2.SampleInLayout` in
        One sample per clock.
    o : stream of :class:`CodedTokensLayout` out
    flush : in
        Request the coder's flush (its last bytes, at the stream's end): it follows every
        sample accepted before it (it waits until the symbol stage and the budget stage
        are empty and no sample is offered). When the last entry was a flush already (the
        stream ended with the block before a sync block) the request is dropped: the
        stream's last bytes are out.

    ``grid_write_domain``: the grid table's write port's domain (as
    :class:`~spikeforge.hdl.compressor_v2.CompressorV2Symbols`).

    Between the symbol stage and the range coder, stage C registers each symbol with its
    cost beyond raw (:func:`~spikeforge.firmware.compression_v2.cost_eighths` with the total
    2**15, less 16 bits; feed-forward) and whether it starts or ends a block. At the range
    coder's entry the decision: the account (a signed :data:`ACCOUNT_BITS`-bit register,
    taken as 0 at a block's first sample; an ESCAPE's raw bits include its two length
    fields) at most BUDGET_SLACK_EIGHTHS: the sample is
    coded (ENTRY_SAMPLE) and the account moves by its cost (kept down to
    ACCOUNT_FLOOR_EIGHTHS); else it goes verbatim (ENTRY_VERBATIM: its 16 bits raw) and the
    account stays. The symbol stage never knows: its state moves on every sample.

    Sync blocks (``codec.sync_blocks``): C counts the blocks as well; the last sample of the
    block before a sync block goes in without ``block_end``, then C holds one more cycle (the
    symbol stage stalls) for an ENTRY_FLUSH carrying ``block_end``: its tokens have both
    ``block_end`` and ``flush``, so a consumer cuts the block after the flush's bytes (the
    model's block end). The coder restarts after it; the symbol stage resets its state at
    the sync block's first sample (:class:`~spikeforge.hdl.compressor_v2.
    CompressorV2Symbols`). The cost: one cycle every ``sync_blocks`` blocks.
    """

    def __init__(self, channels: int, codec: CodecV2Config, *,
                 grid_write_domain: str = "sync"):
        self._channels = channels
        self._codec = codec
        self._grid_write_domain = grid_write_domain
        super().__init__({
            "i": In(stream.Signature(SampleInLayout(channels))),
            "o": Out(stream.Signature(CodedTokensLayout())),
            "flush": In(1),
            **loaded_ports(codec),
        })

    def elaborate(self, platform):
        m = Module()
        channels, codec = self._channels, self._codec
        m.submodules.symbols = symbols = CompressorV2Symbols(
            channels, codec, grid_write_domain=self._grid_write_domain)
        m.submodules.coder = coder = RangeCoderV2()
        wiring.connect(m, wiring.flipped(self.i), symbols.i)
        wiring.connect(m, coder.o, wiring.flipped(self.o))
        for name in loaded_ports(codec):
            m.d.comb += getattr(symbols, name).eq(getattr(self, name))

        flush_pending = Signal()
        with m.If(self.flush):
            m.d.sync += flush_pending.eq(1)
        # Samples inside the symbol stage: a flush waits for them.
        in_flight = Signal(range(symbols.latency + 2))
        taken_in = Signal()
        taken_out = Signal()
        started_in = Signal()
        m.d.comb += [taken_in.eq(symbols.i.valid & symbols.i.ready & (
                         symbols.i.payload.first | started_in)),
                     taken_out.eq(symbols.o.valid & symbols.o.ready)]
        with m.If(symbols.i.valid & symbols.i.ready & symbols.i.payload.first):
            m.d.sync += started_in.eq(1)
        m.d.sync += in_flight.eq(in_flight + taken_in - taken_out)

        # -- C: the symbol, its cost beyond raw, the block's start and end -----------------
        c_valid = Signal()
        advance = Signal()          # C moves (lockstep with the range coder's input)
        m.d.comb += symbols.o.ready.eq(advance)
        entry = symbols.o.payload
        block_sweeps = codec.block_sweeps
        sweep = Signal(range(block_sweeps))
        started = Signal()
        current = Signal.like(sweep)
        with m.If(entry.first):
            m.d.comb += current.eq(Mux(started & (sweep != block_sweeps - 1), sweep + 1, 0))
        with m.Else():
            m.d.comb += current.eq(sweep)
        with m.If(symbols.o.valid & advance):
            m.d.sync += [sweep.eq(current), started.eq(1)]
        block_end = Signal()
        m.d.comb += block_end.eq((entry.channel == channels - 1) & (current == block_sweeps - 1))
        sync_end = Const(0, 1)          # the block's end is the sync flush's
        if codec.sync_blocks:
            block = Signal(range(codec.sync_blocks))
            with m.If(symbols.o.valid & advance & block_end):
                m.d.sync += block.eq(Mux(block == codec.sync_blocks - 1, 0, block + 1))
            sync_end = block_end & (block == codec.sync_blocks - 1)
        # cost - 128 = 8 (high_count + low_count) + _COST_CONST - log2_floor_eighths(f),
        # log2_floor_eighths(f) = 8 (bitlen(f) - 1) + the 3 bits below f's leading one
        f_bits = bit_length(m, entry.frequency, CDF_BITS + 1, "frequency_bits")
        f_top = Signal(4)
        f_fraction = Signal(3)
        m.d.comb += [f_top.eq(f_bits - 1),
                     f_fraction.eq((Cat(Const(0, 3), entry.frequency) >> f_top)[:3])]
        escape = Signal()
        m.d.comb += escape.eq(entry.symbol == ESCAPE)
        raw_bits = Signal(6)
        m.d.comb += raw_bits.eq(entry.high_count + entry.low_count
                                + Mux(escape, 2 * LENGTH_BITS, 0))
        delta = Signal(signed(_DELTA_BITS))
        m.d.comb += delta.eq((raw_bits << 3) + _COST_CONST - Cat(f_fraction, f_top))
        c_fields = {"low": entry.low, "frequency": entry.frequency, "escape": escape,
                    "length_e": entry.length_e, "length_o": entry.length_o,
                    "high_bits": entry.high_bits, "high_count": entry.high_count,
                    "low_bits": entry.low_bits, "low_count": entry.low_count,
                    "value": entry.value, "delta": delta,
                    "block_start": entry.first & (current == 0),
                    "block_end": block_end, "sync_end": sync_end}
        c = _register_stage(m, advance, c_fields, symbols.o.valid, "c", out_valid=c_valid)
        # C's second cycle for a sync block's flush (the sample went in on the first)
        flush_phase = Signal()
        last_flush = Signal()       # the last entry into the coder was a flush

        # -- the running budget: coded or verbatim, at the range coder's entry -------------
        account = Signal(signed(ACCOUNT_BITS))
        now = Signal(signed(ACCOUNT_BITS))
        coded = Signal()
        moved = Signal(signed(ACCOUNT_BITS + 1))
        m.d.comb += [now.eq(Mux(c["block_start"], 0, account)),
                     coded.eq(now <= BUDGET_SLACK_EIGHTHS),
                     moved.eq(now + c["delta"])]
        out = coder.i.payload
        m.d.comb += advance.eq(~c_valid | (coder.i.ready & (~c["sync_end"] | flush_phase)))
        with m.If(c_valid & flush_phase):
            m.d.comb += [coder.i.valid.eq(1), out.kind.eq(ENTRY_FLUSH), out.block_end.eq(1)]
            with m.If(coder.i.ready):
                m.d.sync += [flush_phase.eq(0), last_flush.eq(1)]
        with m.Elif(c_valid):
            m.d.comb += [
                coder.i.valid.eq(1),
                out.kind.eq(Mux(coded, ENTRY_SAMPLE, ENTRY_VERBATIM)),
                out.low.eq(c["low"]), out.frequency.eq(c["frequency"]),
                out.escape.eq(c["escape"]), out.length_e.eq(c["length_e"]),
                out.length_o.eq(c["length_o"]),
                out.high_bits.eq(Mux(coded, c["high_bits"], c["value"])),
                out.high_count.eq(c["high_count"]),
                out.low_bits.eq(c["low_bits"]), out.low_count.eq(c["low_count"]),
                out.block_end.eq(c["block_end"] & ~c["sync_end"]),
            ]
            with m.If(coder.i.ready):
                m.d.sync += [account.eq(Mux(coded, Mux(moved < ACCOUNT_FLOOR_EIGHTHS,
                                                       ACCOUNT_FLOOR_EIGHTHS, moved), now)),
                             flush_phase.eq(c["sync_end"]), last_flush.eq(0)]
        with m.Elif(flush_pending & (in_flight == 0) & ~self.i.valid):
            with m.If(last_flush):
                m.d.sync += flush_pending.eq(0)         # the stream ended with a flush
            with m.Else():
                m.d.comb += [coder.i.valid.eq(1), out.kind.eq(ENTRY_FLUSH)]
                with m.If(coder.i.ready):
                    m.d.sync += [flush_pending.eq(0), last_flush.eq(1)]
        return m
