"""Receive-side dispatcher: good frames to ARP replies, ICMP echo replies and command bytes."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.ethernet import (
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    IP_PROTOCOL_ICMP,
    IP_PROTOCOL_UDP,
    MTU_BYTES,
    EthernetConfig,
)

from .arp import arp_reply_bytes, is_arp_request_head
from .icmp import echo_reply_header_bytes, ip_reply_checksum
from .layouts import FrameByteLayout

__all__ = ["FrameDispatcher", "LearnedHost"]

_DEFAULT_CONFIG = EthernetConfig()    # the build's defaults

HEADER_BYTES = 42          #: Ethernet + IPv4 (no options) + UDP headers; ARP ends at 42 too
ICMP_OFFSET = 34           #: first byte of the ICMP message in the frame
ECHO_BUFFER_BYTES = 2048   #: holds the largest ICMP message (MTU - 20 bytes)


def ones_complement_add(acc, word):
    """``acc + word`` in 16-bit one's complement (the end-around carry added back)."""
    total = acc + word
    return (total[:16] + total[16])[:16]


class FrameDispatcher(wiring.Component):
    """Takes good Ethernet frames, answers ARP and ping, and passes command datagrams on.

    Each frame's first 42 bytes are kept in a shift register; the IPv4 header's checksum and
    the ICMP message's checksum are summed as the bytes pass. A frame is classified in the
    cycle after its last byte (the order is the counters' precedence):

    1. destination neither the board's MAC nor broadcast-with-ARP: ``dropped_mac``;
    2. ARP: not a request for IPv4 over Ethernet (htype 1, ptype 0x0800, 6, 4, op 1):
       ``dropped_other``; target IP not the board's: ``dropped_ip``; else answered
       (``arp_answered``) with an ARP reply to the sender's hardware address;
    3. IPv4: version/IHL not 0x45 (options are not supported), header checksum wrong, a
       fragment (MF set or offset non-zero): ``dropped_other``; destination IP not the
       board's: ``dropped_ip``;

       * UDP: length below 8 or beyond the IP total length: ``dropped_other``; destination
         port not ``control_port``: ``dropped_port``; else ``datagrams``;
       * ICMP: an echo request (type 8, code 0) of at least 8 bytes, all inside the frame,
         checksum right: answered (``ping_answered``) with an echo reply (same identifier,
         sequence and data; IPv4 identification and total length copied, TTL 64, DF clear,
         both checksums computed afresh); anything else ``dropped_other``;
       * other protocols: ``dropped_other``;
    4. any other EtherType (VLAN tags included): ``dropped_other``.

    UDP to the control port is streamed, not stored: from the 43rd byte (the first of the
    payload) the check results are all known, so the payload bytes — ``frame[42:34 + UDP
    length]``, fewer if the frame ends first — go straight to ``command`` while the frame
    passes, with ``command``'s back-pressure stalling ``i``. The UDP checksum is not checked
    (the wire frame's CRC-32 and the FCS protect the bytes).

    Learning the host: ``sender_mac``, ``sender_ip`` and ``sender_port`` change only when the
    first payload byte of a datagram is taken by ``command``, so they always name the sender
    of the bytes the command decoder has most recently received. The decoder carries a
    command out after its last byte and does not take another byte until its reply is
    written, so at the moment it accepts a command these outputs name that command's sender
    (a command split across two datagrams from two hosts is credited to the second).
    Integrators latch them with :class:`LearnedHost` on the decoder's accept strobe.

    Replies are emitted on ``reply`` (ARP 42 bytes, echo reply 14 + IP total length bytes,
    unpadded, no FCS) while ``i`` is stalled; an echo request's message is kept in a
    ``2048``-byte block RAM until its reply is sent.

    Ports
    -----
    i : stream of :data:`FrameByteLayout` in, good frames from :class:`MACReceiver`.
    board_mac, board_ip, control_port : in
        The board's addresses (inits from :class:`EthernetConfig`; a register may drive them).
    reply : stream of :data:`FrameByteLayout` out, to the transmit arbiter.
    command : stream of bytes out, to :class:`~spikeforge.hdl.control.CommandDecoder`.
    sender_mac, sender_ip, sender_port, sender_valid : out (see above).
    dropped_mac, dropped_ip, dropped_port, dropped_other, arp_answered, ping_answered,
    datagrams : out, 32-bit counters.
    """

    def __init__(self, config: EthernetConfig = _DEFAULT_CONFIG):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(FrameByteLayout)),
            "board_mac": In(48, init=config.mac),
            "board_ip": In(32, init=config.ip),
            "control_port": In(16, init=config.control_port),
            "reply": Out(stream.Signature(FrameByteLayout)),
            "command": Out(stream.Signature(8)),
            "sender_mac": Out(48), "sender_ip": Out(32), "sender_port": Out(16),
            "sender_valid": Out(1),
            **{name: Out(32) for name in (
                "dropped_mac", "dropped_ip", "dropped_port", "dropped_other", "arp_answered",
                "ping_answered", "datagrams")},
        })

    def elaborate(self, platform):
        m = Module()
        header = Signal(8 * HEADER_BYTES)
        index = Signal(range(2048))                 # of the byte now at ``i``, saturating
        ip_sum = Signal(16)
        icmp_sum = Signal(16)
        early_total_length = Signal(16)

        def field(offset: int, length: int):
            """Frame bytes ``offset..offset+length-1`` as a big-endian value."""
            low = (HEADER_BYTES - offset - length) * 8
            return header[low:low + 8 * length]

        destination, ethertype = field(0, 6), field(12, 2)
        total_length, protocol = field(16, 2), field(23, 1)
        udp_length, destination_port = field(38, 2), field(36, 2)

        mac_ok = Signal()
        ip_header_ok = Signal()
        ip_for_us = Signal()
        udp_length_ok = Signal()
        deliver = Signal()
        m.d.comb += [
            mac_ok.eq((destination == self.board_mac)
                      | ((destination == 0xFFFF_FFFF_FFFF) & (ethertype == ETHERTYPE_ARP))),
            ip_header_ok.eq((field(14, 1) == 0x45) & (ip_sum == 0xFFFF)
                            & ((field(20, 1) & 0x3F) == 0) & (field(21, 1) == 0)),
            ip_for_us.eq(field(30, 4) == self.board_ip),
            udp_length_ok.eq((udp_length >= 8) & (udp_length + 20 <= total_length)),
            deliver.eq(mac_ok & (ethertype == ETHERTYPE_IPV4) & ip_header_ok & ip_for_us
                       & (protocol == IP_PROTOCOL_UDP) & udp_length_ok
                       & (destination_port == self.control_port)),
        ]

        m.submodules.echo = echo = Memory(shape=8, depth=ECHO_BUFFER_BYTES, init=[])
        echo_write = echo.write_port()
        echo_read = echo.read_port(transparent_for=())

        out_index = Signal(range(2048))
        reply_length = Signal(range(2048))
        ip_checksum = Signal(16)
        icmp_checksum = Signal(16)
        taken = self.reply.valid & self.reply.ready

        with m.FSM():
            with m.State("RECEIVE"):
                byte = self.i.payload.data
                in_payload = ((index >= HEADER_BYTES) & deliver
                              & (index < udp_length + (HEADER_BYTES - 8)))
                with m.If(in_payload):
                    m.d.comb += [
                        self.command.valid.eq(self.i.valid),
                        self.command.payload.eq(byte),
                        self.i.ready.eq(self.command.ready),
                    ]
                    with m.If((index == HEADER_BYTES) & self.command.ready & self.i.valid):
                        m.d.sync += [
                            self.sender_mac.eq(field(6, 6)),
                            self.sender_ip.eq(field(26, 4)),
                            self.sender_port.eq(field(34, 2)),
                            self.sender_valid.eq(1),
                        ]
                with m.Else():
                    m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid & self.i.ready):
                    word = Mux(index[0], byte, Cat(Const(0, 8), byte))
                    with m.If(index != 2047):
                        m.d.sync += index.eq(index + 1)
                    with m.If(index < HEADER_BYTES):
                        m.d.sync += header.eq(Cat(byte, header[:-8]))
                    with m.If((index >= 14) & (index < ICMP_OFFSET)):
                        m.d.sync += ip_sum.eq(ones_complement_add(ip_sum, word))
                    # The ICMP sum of the reply: type (byte 34) and checksum (36, 37) as 0.
                    # (The header register's fields line up only from byte 42 on, so the
                    # IPv4 total length the ICMP sum needs from byte 34 is kept apart.)
                    with m.If((index == 16) | (index == 17)):
                        m.d.sync += early_total_length.eq(Cat(byte, early_total_length[:8]))
                    with m.If((index >= ICMP_OFFSET) & (index < early_total_length + 14)
                              & (index != 34) & (index != 36) & (index != 37)):
                        m.d.sync += icmp_sum.eq(ones_complement_add(icmp_sum, word))
                    with m.If(index >= ICMP_OFFSET):
                        m.d.comb += [
                            echo_write.addr.eq(index - ICMP_OFFSET),
                            echo_write.data.eq(byte),
                            echo_write.en.eq(1),
                        ]
                    with m.If(self.i.payload.last):
                        m.next = "CLASSIFY"

            with m.State("CLASSIFY"):
                frame_length = index
                m.d.sync += [index.eq(0), ip_sum.eq(0), icmp_sum.eq(0), out_index.eq(0),
                             ip_checksum.eq(ip_reply_checksum(total_length, field(18, 2),
                                                              self.board_ip, field(26, 4))),
                             icmp_checksum.eq(~icmp_sum),
                             reply_length.eq(total_length + 14)]
                m.next = "RECEIVE"

                def count(name: str) -> None:
                    counter = getattr(self, name)
                    m.d.sync += counter.eq(counter + 1)

                icmp_ok = ((total_length >= 28) & (frame_length >= total_length + 14)
                           & (field(34, 1) == 8) & (field(35, 1) == 0)
                           & (ones_complement_add(ones_complement_add(icmp_sum, 0x0800),
                                                  field(36, 2)) == 0xFFFF))
                with m.If(frame_length < HEADER_BYTES):
                    count("dropped_other")
                with m.Elif(~mac_ok):
                    count("dropped_mac")
                with m.Elif(ethertype == ETHERTYPE_ARP):
                    with m.If(~is_arp_request_head(field(14, 8))):
                        count("dropped_other")
                    with m.Elif(field(38, 4) != self.board_ip):
                        count("dropped_ip")
                    with m.Else():
                        count("arp_answered")
                        m.next = "ARP_REPLY"
                with m.Elif(ethertype == ETHERTYPE_IPV4):
                    with m.If(~ip_header_ok):
                        count("dropped_other")
                    with m.Elif(~ip_for_us):
                        count("dropped_ip")
                    with m.Elif(protocol == IP_PROTOCOL_UDP):
                        with m.If(~udp_length_ok):
                            count("dropped_other")
                        with m.Elif(destination_port != self.control_port):
                            count("dropped_port")
                        with m.Else():
                            count("datagrams")
                    with m.Elif((protocol == IP_PROTOCOL_ICMP) & icmp_ok):
                        count("ping_answered")
                        m.next = "ECHO_REPLY"
                    with m.Else():
                        count("dropped_other")
                with m.Else():
                    count("dropped_other")

            with m.State("ARP_REPLY"):
                reply_bytes = arp_reply_bytes(field(22, 6), field(28, 4), self.board_mac,
                                              self.board_ip)
                m.d.comb += [
                    self.reply.valid.eq(1),
                    self.reply.payload.data.eq(_select(m, out_index, reply_bytes)),
                    self.reply.payload.last.eq(out_index == len(reply_bytes) - 1),
                ]
                with m.If(taken):
                    m.d.sync += out_index.eq(out_index + 1)
                    with m.If(self.reply.payload.last):
                        m.next = "RECEIVE"

            with m.State("ECHO_REPLY"):
                reply_header = echo_reply_header_bytes(
                    field(6, 6), self.board_mac, total_length, field(18, 2), ip_checksum,
                    self.board_ip, field(26, 4), icmp_checksum)
                # The block RAM shows the byte at out_index (its address runs one ahead when
                # a byte is taken), so the payload needs no extra register stage.
                m.d.comb += [
                    echo_read.addr.eq(Mux(taken, out_index + 1, out_index) - ICMP_OFFSET),
                    echo_read.en.eq(1),
                    self.reply.valid.eq(1),
                    self.reply.payload.data.eq(Mux(
                        out_index < len(reply_header),
                        _select(m, out_index, reply_header), echo_read.data)),
                    self.reply.payload.last.eq(out_index == reply_length - 1),
                ]
                with m.If(taken):
                    m.d.sync += out_index.eq(out_index + 1)
                    with m.If(self.reply.payload.last):
                        m.next = "RECEIVE"
        return m


def _select(m: Module, index, byte_values: list) -> Signal:
    """``byte_values[index]`` as a signal (0 beyond the list)."""
    chosen = Signal(8)
    with m.Switch(index):
        for position, value in enumerate(byte_values):
            with m.Case(position):
                m.d.comb += chosen.eq(value)
    return chosen


class LearnedHost(wiring.Component):
    """Latches the host's address from the first command the decoder accepts.

    Ports
    -----
    sender_mac, sender_ip, sender_port : in, from :class:`FrameDispatcher`.
    accept : in
        High for one cycle when the command decoder carries out a command (e.g. when its
        ``commands_executed`` counter changes).
    host_mac, host_ip, host_port, host_valid : out
        The sender at the first ``accept`` after reset; ``host_valid`` high from the cycle
        after it. Later commands (from any sender) do not change them.
    """

    sender_mac: In(48)
    sender_ip: In(32)
    sender_port: In(16)
    accept: In(1)
    host_mac: Out(48)
    host_ip: Out(32)
    host_port: Out(16)
    host_valid: Out(1)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.accept & ~self.host_valid):
            m.d.sync += [
                self.host_mac.eq(self.sender_mac),
                self.host_ip.eq(self.sender_ip),
                self.host_port.eq(self.sender_port),
                self.host_valid.eq(1),
            ]
        return m


assert MTU_BYTES - 20 <= ECHO_BUFFER_BYTES
