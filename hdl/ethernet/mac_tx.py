"""Gigabit Ethernet MAC transmitter: frames in, GMII bytes out (preamble, pad, FCS, gap)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.ethernet import (
    FCS_BYTES,
    INTER_FRAME_GAP_BYTES,
    MIN_FRAME_BYTES,
    PREAMBLE_SFD,
)

from ..crc import crc32_update
from .layouts import FrameByteLayout

__all__ = ["MACTransmitter"]


class MACTransmitter(wiring.Component):
    """Puts whole Ethernet frames on a GMII-style byte interface, one byte per clock.

    Each frame leaves as preamble (7 x 0x55), SFD (0xD5), the frame's bytes, zeros up to
    :data:`MIN_FRAME_BYTES`, the FCS (the complement of the CRC-32 of frame and pad,
    least significant byte first, as :func:`zlib.crc32`) and then :data:`INTER_FRAME_GAP_BYTES`
    idle cycles (``tx_en`` low) before the next preamble may start.

    **The frame source must supply one byte per cycle once a frame has begun**: the MAC
    cannot pause the wire. The source is therefore a store-and-forward buffer of whole
    frames (:class:`~spikeforge.hdl.ethernet.frame_fifo.FrameFifo`), which offers a frame
    only once all of it is stored. If ``i.valid`` still drops inside a frame (an underrun),
    the MAC never sends a silently wrong frame: it asserts ``tx_en`` and ``tx_er`` together
    for one cycle (on RGMII this is the PHY's "transmit error propagation", which the
    receiver sees as a bad frame), ends the frame there, discards the rest of it up to its
    ``last`` byte and counts the event in ``underruns``.

    Ports
    -----
    i : stream of :data:`FrameByteLayout` in
        A frame is ``i.valid`` bytes from destination MAC to the end of the payload, ``last``
        on the final one. The MAC waits for ``i.valid`` to start a frame (the preamble is
        sent while the first byte is held), then takes one byte per cycle.
    tx_data, tx_en, tx_er : out
        GMII transmit byte, enable and error, all registered, to
        :class:`~spikeforge.hdl.ethernet.rgmii_tx.RGMIITransmitter`.
    underruns : out
        Frames cut short because the source had no byte ready (saturating).
    frames_sent : out
        Frames sent whole (wraps).

    Latency: the first preamble byte is on ``tx_data`` one cycle after ``i.valid`` rises;
    the first frame byte is taken 8 cycles later. Throughput: a frame of ``n >= 60`` bytes
    occupies ``8 + n + 4 + 12`` cycles.
    """

    i: In(stream.Signature(FrameByteLayout))
    tx_data: Out(8)
    tx_en: Out(1)
    tx_er: Out(1)
    underruns: Out(16)
    frames_sent: Out(32)

    def elaborate(self, platform):
        m = Module()
        crc = Signal(32, init=0xFFFFFFFF)
        count = Signal(range(64))          # preamble bytes, then frame bytes (saturating)
        fcs_index = Signal(range(FCS_BYTES))
        gap = Signal(range(INTER_FRAME_GAP_BYTES))
        preamble_bytes = len(PREAMBLE_SFD)

        m.d.sync += [self.tx_en.eq(0), self.tx_er.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += count.eq(0)
                with m.If(self.i.valid):
                    m.next = "PREAMBLE"
            with m.State("PREAMBLE"):
                m.d.sync += [
                    self.tx_en.eq(1),
                    self.tx_data.eq(Mux(count == preamble_bytes - 1, PREAMBLE_SFD[-1],
                                        PREAMBLE_SFD[0])),
                    count.eq(count + 1),
                ]
                with m.If(count == preamble_bytes - 1):
                    m.d.sync += [count.eq(0), crc.eq(0xFFFFFFFF)]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.i.ready.eq(1)
                m.d.sync += self.tx_en.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [
                        self.tx_data.eq(self.i.payload.data),
                        crc.eq(crc32_update(crc, self.i.payload.data)),
                    ]
                    with m.If(count != MIN_FRAME_BYTES):
                        m.d.sync += count.eq(count + 1)
                    with m.If(self.i.payload.last):
                        m.d.sync += fcs_index.eq(0)
                        # count + 1 < MIN_FRAME_BYTES, as one constant comparison (no
                        # adder before it on the state register's path).
                        with m.If(count < MIN_FRAME_BYTES - 1):
                            m.next = "PAD"
                        with m.Else():
                            m.next = "FCS"
                with m.Else():
                    # Underrun: mark the frame bad on the wire, then drop what is left of it.
                    m.d.sync += [self.tx_er.eq(1), self.tx_data.eq(0)]
                    with m.If(self.underruns != (1 << len(self.underruns)) - 1):
                        m.d.sync += self.underruns.eq(self.underruns + 1)
                    m.next = "DISCARD"
            with m.State("PAD"):
                m.d.sync += [
                    self.tx_en.eq(1),
                    self.tx_data.eq(0),
                    crc.eq(crc32_update(crc, 0)),
                    count.eq(count + 1),
                ]
                with m.If(count == MIN_FRAME_BYTES - 1):
                    m.next = "FCS"
            with m.State("FCS"):
                m.d.sync += [
                    self.tx_en.eq(1),
                    self.tx_data.eq(~crc[:8]),
                    crc.eq(crc >> 8),
                    fcs_index.eq(fcs_index + 1),
                ]
                with m.If(fcs_index == FCS_BYTES - 1):
                    m.d.sync += [gap.eq(0), self.frames_sent.eq(self.frames_sent + 1)]
                    m.next = "GAP"
            with m.State("DISCARD"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid & self.i.payload.last):
                    m.d.sync += gap.eq(0)
                    m.next = "GAP"
            with m.State("GAP"):
                # IDLE adds one more cycle with tx_en low before the next preamble.
                m.d.sync += gap.eq(gap + 1)
                with m.If(gap == INTER_FRAME_GAP_BYTES - 2):
                    m.next = "IDLE"
        return m
