"""Datagram builder: one IPv4/UDP datagram (in IPv4 fragments) per wire frame."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.ethernet import (
    ETH_HEADER_BYTES,
    ETHERTYPE_IPV4,
    FRAGMENT_PAYLOAD_BYTES,
    IP_PROTOCOL_UDP,
    IPV4_HEADER_BYTES,
    MAX_WIRE_FRAME_BYTES,
    UDP_HEADER_BYTES,
    EthernetConfig,
)
from spikeforge.firmware.wire import CRC_BYTES, HEADER_BYTES

from .layouts import FrameByteLayout
from .pipeline import StreamRegister

__all__ = ["UDPTransmitter"]

_TTL = 64
_FIRST_HEADER_BYTES = ETH_HEADER_BYTES + IPV4_HEADER_BYTES + UDP_HEADER_BYTES + HEADER_BYTES
_LATER_HEADER_BYTES = ETH_HEADER_BYTES + IPV4_HEADER_BYTES
#: Largest wire payload length field whose frame still fits one datagram.
_MAX_WIRE_PAYLOAD = MAX_WIRE_FRAME_BYTES - HEADER_BYTES - CRC_BYTES


def _big_endian(value, nbytes: int) -> list:
    """The bytes of ``value`` most significant first (network order)."""
    return [value[8 * k:8 * k + 8] for k in reversed(range(nbytes))]


class UDPTransmitter(wiring.Component):
    """Wraps each wire frame of a byte stream in one UDP datagram to the host.

    The input is the framer's byte stream of whole wire frames
    (:mod:`spikeforge.firmware.wire`); the builder reads each frame's length field to find
    where it ends (the framer's frames are trusted: sync bytes are not checked). Each frame
    becomes one UDP datagram from ``local_ip:local_port`` to ``host_ip:host_port``, UDP
    checksum 0, IPv4 identification counting the datagrams sent (from 0 after reset,
    wrapping), TTL 64. A datagram larger than one Ethernet payload leaves as IPv4 fragments
    of :data:`FRAGMENT_PAYLOAD_BYTES` bytes of IP payload (the last one shorter), the UDP
    header in the first; each fragment is one Ethernet frame on ``o`` with its own header
    checksum.

    **Drops.** ``host_valid`` is sampled once per wire frame, as its 9th header byte is
    taken, and the host address in the cycle after: if ``host_valid`` is low (no host
    learned yet; once high it stays high), or the
    frame would not fit one datagram (longer than :data:`MAX_WIRE_FRAME_BYTES`, which the
    framer never makes), the whole wire frame is taken and discarded and
    ``datagrams_dropped`` counts it. Addresses and ports are latched per datagram, so a
    change mid-datagram never splits one.

    Ports
    -----
    i : stream of bytes in, whole wire frames back to back
        Taken at up to one byte per cycle; may stall anywhere.
    o : stream of :data:`FrameByteLayout` out, one Ethernet frame (no FCS) per fragment
        Bytes leave at up to one per cycle, through a register slice (one cycle of
        latency); ``o`` may stall anywhere, and its frames may have
        gaps where ``i`` stalled: put a :class:`~.frame_fifo.FrameFifo` before the MAC.
    host_mac, host_ip, host_port, host_valid : in
        The learned host (destination).
    local_mac, local_ip, local_port : in
        The board's own address and source port (reset: ``ethernet`` and ``port``).
    datagrams_sent, datagrams_dropped : out
        Wire frames sent (all fragments offered) and discarded (wrap at 2**32).

    Latency and throughput: a wire frame's header is taken in 9 cycles, then 1 cycle decides,
    and each fragment spends 7 cycles preparing its header (the IPv4 checksum is summed in
    a pipeline of short adders, for 125 MHz) and then
    ``14 + 20 (+ 8 + 9 in the first)`` cycles emitting it while ``i`` waits; its payload
    then passes through at the input's pace. A 2 KiB frame in 2 fragments: ~2100 cycles.
    """

    def __init__(self, ethernet: EthernetConfig | None = None, port: int | None = None):
        ethernet = EthernetConfig() if ethernet is None else ethernet
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(FrameByteLayout)),
            "host_mac": In(48),
            "host_ip": In(32),
            "host_port": In(16),
            "host_valid": In(1),
            "local_mac": In(48, init=ethernet.mac),
            "local_ip": In(32, init=ethernet.ip),
            "local_port": In(16, init=ethernet.data_port if port is None else port),
            "datagrams_sent": Out(32),
            "datagrams_dropped": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        # The frame bytes leave through a register slice: ``o.valid`` is then a flip-flop
        # placed near the consumer, not the state decode that also enables the wide header
        # register, and that enable starts at the slice's ``ready`` flip-flop.
        m.submodules.output = output = StreamRegister(FrameByteLayout)
        wiring.connect(m, output.o, wiring.flipped(self.o))
        r = _Registers()
        m.d.comb += r.flags_offset.eq(Cat(r.offset_units, r.more, Const(0, 2)))  # MF; DF 0
        with m.FSM():
            self._wire_header(m, r)
            self._checksum(m, r)
            self._fragment(m, r, output.i)
        return m

    def _wire_header(self, m: Module, r: "_Registers") -> None:
        """States WIRE_HEADER, DECIDE and DROP: a wire frame's header is taken, then the
        frame is either sent (its datagram's addresses latched) or taken and dropped."""
        with m.State("WIRE_HEADER"):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [
                    r.wire_header.eq(Cat(r.wire_header[8:], self.i.payload)),
                    r.header_taken.eq(r.header_taken + 1),
                ]
                with m.If(r.header_taken == HEADER_BYTES - 1):
                    length = Cat(r.wire_header[8 * 8:], self.i.payload)
                    m.d.sync += [
                        r.header_taken.eq(0),
                        r.wire_length.eq(length),
                        # Decided here, so DECIDE's branch is a flip-flop (``host_valid``
                        # only ever rises, and the address it validates is latched next).
                        r.drop.eq(~self.host_valid | (length > _MAX_WIRE_PAYLOAD)),
                    ]
                    m.next = "DECIDE"
        with m.State("DECIDE"):
            with m.If(r.drop):
                m.d.sync += [
                    r.to_drop.eq(r.wire_length + CRC_BYTES),
                    r.drop_end.eq(0),                   # at least CRC_BYTES to take
                    self.datagrams_dropped.eq(self.datagrams_dropped + 1),
                ]
                m.next = "DROP"
            with m.Else():
                udp_bytes = UDP_HEADER_BYTES + HEADER_BYTES + CRC_BYTES + r.wire_length
                m.d.sync += [
                    r.dst_mac.eq(self.host_mac), r.dst_ip.eq(self.host_ip),
                    r.dst_port.eq(self.host_port),
                    r.src_mac.eq(self.local_mac), r.src_ip.eq(self.local_ip),
                    r.src_port.eq(self.local_port),
                    r.udp_length.eq(udp_bytes), r.ip_left.eq(udp_bytes),
                    r.offset_units.eq(0), r.first.eq(1),
                ]
                m.next = "FRAGMENT"
        with m.State("DROP"):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [r.to_drop.eq(r.to_drop - 1), r.drop_end.eq(r.to_drop == 2)]
                with m.If(r.drop_end):
                    m.next = "WIRE_HEADER"

    def _checksum(self, m: Module, r: "_Registers") -> None:
        """States FRAGMENT to COMPLEMENT: a fragment's length, flags and IPv4 header
        checksum, summed over four cycles (two 16-bit words or three per adder) so that no
        adder chain is longer than one carry chain at 125 MHz."""
        constant_words = 0x4500 + (_TTL << 8 | IP_PROTOCOL_UDP)
        with m.State("FRAGMENT"):
            last_fragment = r.ip_left <= FRAGMENT_PAYLOAD_BYTES
            fragment_ip_bytes = Mux(last_fragment, r.ip_left, FRAGMENT_PAYLOAD_BYTES)
            m.d.sync += [
                r.more.eq(~last_fragment),
                r.fragment_length.eq(fragment_ip_bytes),
                r.total_length.eq(IPV4_HEADER_BYTES + fragment_ip_bytes),
                r.address_sum.eq(r.src_ip[16:] + r.src_ip[:16] + constant_words),
                r.word_sum.eq(r.dst_ip[16:] + r.dst_ip[:16]),
            ]
            m.next = "SUM"
        with m.State("SUM"):
            m.d.sync += [
                r.fragment_sum.eq(r.total_length + r.identification + r.flags_offset),
                r.address_sum.eq(r.address_sum + r.word_sum),
            ]
            m.next = "SUM_ALL"
        with m.State("SUM_ALL"):
            m.d.sync += r.word_sum.eq(r.address_sum + r.fragment_sum)
            m.next = "FOLD"
        with m.State("FOLD"):
            m.d.sync += r.folded_once.eq(r.word_sum[:16] + r.word_sum[16:])
            m.next = "COMPLEMENT"
        with m.State("COMPLEMENT"):
            m.d.sync += r.checksum.eq(~(r.folded_once[:16] + r.folded_once[16])[:16])
            m.next = "LOAD"

    def _fragment(self, m: Module, r: "_Registers", out) -> None:
        """States LOAD, HEADER and PAYLOAD: the fragment's headers loaded into the shift
        register and sent, then its payload passed from ``i`` to ``out``."""
        with m.State("LOAD"):
            payload_bytes = r.fragment_length - Mux(r.first, UDP_HEADER_BYTES + HEADER_BYTES, 0)
            m.d.sync += [
                r.header.eq(Cat(*r.header_bytes())),
                r.header_left.eq(Mux(r.first, _FIRST_HEADER_BYTES, _LATER_HEADER_BYTES)),
                r.header_end.eq(0),
                r.payload_left.eq(payload_bytes),
                r.payload_end.eq(payload_bytes == 1),
                r.ip_left.eq(r.ip_left - r.fragment_length),
            ]
            m.next = "HEADER"
        with m.State("HEADER"):
            m.d.comb += [out.valid.eq(1), out.payload.data.eq(r.header[:8])]
            with m.If(out.ready):
                m.d.sync += [r.header.eq(r.header >> 8), r.header_left.eq(r.header_left - 1),
                             r.header_end.eq(r.header_left == 2)]
                with m.If(r.header_end):
                    m.next = "PAYLOAD"
        with m.State("PAYLOAD"):
            m.d.comb += [
                out.valid.eq(self.i.valid),
                out.payload.data.eq(self.i.payload),
                out.payload.last.eq(r.payload_end),
                self.i.ready.eq(out.ready),
            ]
            with m.If(self.i.valid & out.ready):
                m.d.sync += [r.payload_left.eq(r.payload_left - 1),
                             r.payload_end.eq(r.payload_left == 2)]
                with m.If(r.payload_end):
                    m.d.sync += [
                        r.first.eq(0),
                        r.offset_units.eq(r.offset_units + FRAGMENT_PAYLOAD_BYTES // 8),
                    ]
                    with m.If(r.more):
                        m.next = "FRAGMENT"
                    with m.Else():
                        m.d.sync += [
                            r.identification.eq(r.identification + 1),
                            self.datagrams_sent.eq(self.datagrams_sent + 1),
                        ]
                        m.next = "WIRE_HEADER"


class _Registers:
    """The datagram builder's registers, shared by the parts of its ``elaborate``."""

    def __init__(self):
        self.wire_header = Signal(8 * HEADER_BYTES)     # the frame's first bytes, first at 0
        self.header_taken = Signal(range(HEADER_BYTES))
        self.wire_length = Signal(16)
        self.drop = Signal()                            # no host, or the frame too long
        self.to_drop = Signal(17)                       # bytes of a dropped frame still to take
        # Latched per datagram.
        self.dst_mac, self.src_mac = Signal(48), Signal(48)
        self.dst_ip, self.src_ip = Signal(32), Signal(32)
        self.dst_port, self.src_port = Signal(16), Signal(16)
        self.udp_length = Signal(16)
        self.identification = Signal(16)
        # Per fragment.
        self.ip_left = Signal(17)                       # IP payload bytes not yet framed
        self.offset_units = Signal(13)                  # fragment offset, 8-byte units
        self.first = Signal()
        self.more = Signal()
        self.fragment_length = Signal(range(FRAGMENT_PAYLOAD_BYTES + 1))
        self.total_length = Signal(16)
        self.flags_offset = Signal(16)
        # The IPv4 header checksum's partial sums (see ``UDPTransmitter._checksum``).
        self.address_sum = Signal(19)                   # addresses and constant words
        self.fragment_sum = Signal(18)                  # length, identification, flags/offset
        self.word_sum = Signal(20)
        self.folded_once = Signal(17)
        self.checksum = Signal(16)
        self.header = Signal(8 * _FIRST_HEADER_BYTES)
        self.header_left = Signal(range(_FIRST_HEADER_BYTES + 1))
        self.payload_left = Signal(range(FRAGMENT_PAYLOAD_BYTES + 1))
        # The counters' "at one" as flags registered as they count down, so no comparator
        # sits on the state register's path (or on ``o``'s ``last``).
        self.drop_end, self.header_end, self.payload_end = Signal(), Signal(), Signal()

    def header_bytes(self) -> list:
        """The fragment's header bytes in wire order (the UDP header and the wire frame's
        header only in the first; ``LOAD`` sends as many as the fragment has)."""
        return [
            *_big_endian(self.dst_mac, 6), *_big_endian(self.src_mac, 6),
            *_big_endian(Const(ETHERTYPE_IPV4, 16), 2),
            Const(0x45, 8), Const(0, 8), *_big_endian(self.total_length, 2),
            *_big_endian(self.identification, 2), *_big_endian(self.flags_offset, 2),
            Const(_TTL, 8), Const(IP_PROTOCOL_UDP, 8), *_big_endian(self.checksum, 2),
            *_big_endian(self.src_ip, 4), *_big_endian(self.dst_ip, 4),
            *_big_endian(self.src_port, 2), *_big_endian(self.dst_port, 2),
            *_big_endian(self.udp_length, 2), Const(0, 8), Const(0, 8),
            self.wire_header,
        ]
