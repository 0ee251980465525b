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

from .arp import ARP_REPLY_BYTES, arp_reply_bytes, is_arp_request_head
from .icmp import ECHO_REPLY_HEADER_BYTES, REPLY_TTL, echo_reply_header_bytes
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
    the ICMP message's checksum are summed as the bytes pass (plain sums, folded to one's
    complement after the header or the frame). A frame's checks are registered in the
    cycle after its last byte, its sums folded in the next, and it is classified in the
    third, while ``i`` waits (short stages for 125 MHz). The order is the counters'
    precedence:

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
    unpadded, no FCS) while ``i`` is stalled: the reply's header bytes are loaded into a
    register and shifted out (an echo reply four cycles after its request is classified,
    once its IPv4 checksum is folded and its message's first byte read ahead); an echo
    request's message is kept in a ``2048``-byte block RAM until its reply is sent.

    Ports
    -----
    i : stream of :data:`FrameByteLayout` in, good frames from :class:`MACReceiver`.
    board_mac, board_ip, control_port : in
        The board's addresses (inits from :class:`EthernetConfig`; a register may drive them).
    reply : stream of :data:`FrameByteLayout` out, to the transmit arbiter.
    command : stream of bytes out, to :class:`~spikeforge.hdl.control.CommandDecoder`.
    sender_mac, sender_ip, sender_port, sender_valid : out (see above).
    frame_mac, frame_ip, frame_port : out
        The source MAC, IPv4 address and UDP port of the frame now at ``i``, read from the
        header register: valid from its byte 42 (so whenever ``command.valid`` is high)
        until the next frame's first byte is taken.
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
            "frame_mac": Out(48), "frame_ip": Out(32), "frame_port": Out(16),
            **{name: Out(32) for name in (
                "dropped_mac", "dropped_ip", "dropped_port", "dropped_other", "arp_answered",
                "ping_answered", "datagrams")},
        })

    def elaborate(self, platform):
        m = Module()
        header = Signal(8 * HEADER_BYTES)
        index = Signal(range(2048))                 # of the byte now at ``i``, saturating
        # One's complement sums, kept as plain sums and folded after the frame (the same
        # result, and one short adder per byte instead of two chained ones).
        ip_sum = Signal(20)
        icmp_sum = Signal(27)
        early_total_length = Signal(16)
        icmp_end = Signal(17)                       # 14 + IPv4 total length

        def field_after(shifted: int, offset: int, length: int):
            """Frame bytes ``offset..offset+length-1`` as a big-endian value, once
            ``shifted`` bytes have entered the header register."""
            low = (shifted - offset - length) * 8
            return header[low:low + 8 * length]

        def field(offset: int, length: int):
            """Frame bytes ``offset..offset+length-1`` once the whole header is in."""
            return field_after(HEADER_BYTES, offset, length)

        ethertype, total_length = field(12, 2), field(16, 2)
        protocol, destination_port = field(23, 1), field(36, 2)

        # The longest UDP datagram the IPv4 total length allows (total - 20), from byte 18
        # on, so that the UDP length check at byte 40 is one comparison.
        udp_length_limit = Signal(17)

        def checks(field):
            """The header checks, on the header register as ``field`` reads it."""
            mac_ok = ((field(0, 6) == self.board_mac)
                      | ((field(0, 6) == 0xFFFF_FFFF_FFFF) & (field(12, 2) == ETHERTYPE_ARP)))
            udp_length = field(38, 2)
            udp_length_ok = ((udp_length >= 8) & ~udp_length_limit[16]
                             & (udp_length <= udp_length_limit[:16]))
            return mac_ok, udp_length_ok

        # Whether a datagram's payload goes to ``command``: its header checks are registered
        # while byte 40 is at ``i`` (bytes 0..39 are in the register: every field they need,
        # up to the UDP length at 38..39), combined into one flag when byte 41 is taken,
        # so that from byte 42 on the payload path starts at flip-flops.
        payload_last = Signal(17)                   # index of the payload's last byte
        in_payload = Signal()                       # the byte at ``i`` goes to ``command``
        ip_sum_folded = Signal(17)
        ip_header_ok = Signal()
        early = [Signal(name=f"deliver_check_{k}") for k in range(4)]
        udp_length_fits = Signal()                  # 8 <= UDP length <= IP total - 20

        def at40(offset: int, length: int):
            return field_after(HEADER_BYTES - 2, offset, length)

        with m.If(index == HEADER_BYTES - 2):
            mac_ok_early, udp_length_ok_early = checks(at40)
            m.d.sync += [
                early[0].eq(mac_ok_early & (at40(12, 2) == ETHERTYPE_IPV4)),
                early[1].eq((at40(14, 1) == 0x45) & ((at40(20, 1) & 0x3F) == 0)
                            & (at40(21, 1) == 0) & (at40(23, 1) == IP_PROTOCOL_UDP)),
                early[2].eq((at40(30, 4) == self.board_ip)
                            & (at40(36, 2) == self.control_port)),
                early[3].eq(udp_length_ok_early & (at40(38, 2) > 8)),
                udp_length_fits.eq(udp_length_ok_early),
                payload_last.eq(at40(38, 2) + (HEADER_BYTES - 9)),
            ]
        # Byte 42 is payload if the datagram is delivered and has any.
        with m.If((index == HEADER_BYTES - 1) & self.i.valid & self.i.ready):
            m.d.sync += in_payload.eq(Cat(*early, ip_header_ok).all())
        # Later bytes are, up to the payload's last (registered, so ``command.valid`` and
        # ``i.ready`` start at flip-flops).
        with m.Elif((index >= HEADER_BYTES) & self.i.valid & self.i.ready):
            m.d.sync += in_payload.eq(in_payload & (index != payload_last))
        # The IPv4 header sum is complete from byte 34; folded and checked while bytes
        # 35..41 pass (registered twice, so it is ready at byte 41).
        m.d.sync += [
            ip_sum_folded.eq(ip_sum[:16] + ip_sum[16:]),
            ip_header_ok.eq((ip_sum_folded[:16] + ip_sum_folded[16])[:16] == 0xFFFF),
        ]

        m.submodules.echo = echo = Memory(shape=8, depth=ECHO_BUFFER_BYTES, init=[])
        echo_write = echo.write_port()
        echo_read = echo.read_port(transparent_for=())

        out_index = Signal(range(2048))
        in_header = Signal(init=1)                  # the byte at ``i`` is one of the first 42
        m.d.comb += [self.frame_mac.eq(field(6, 6)), self.frame_ip.eq(field(26, 4)),
                     self.frame_port.eq(field(34, 2))]
        last_index = Signal(range(2048))            # of the reply's last byte
        reply_bytes = Signal(8 * ARP_REPLY_BYTES)   # shifted out, first byte at the bottom
        from_memory = Signal()                      # the echo reply is past its header
        echo_address = Signal(range(ECHO_BUFFER_BYTES))    # next to read from the RAM
        echo_byte = Signal(8)                       # the message byte now due, prefetched
        taken = self.reply.valid & self.reply.ready

        # Classification, registered in CHECK from the frame's header and sums.
        mac_ok, udp_length_ok = Signal(), Signal()
        ip_ok, ip_for_us, port_ok = Signal(), Signal(), Signal()
        arp_request, arp_for_us = Signal(), Signal()
        is_arp, is_ipv4, is_udp, is_icmp, short = Signal(), Signal(), Signal(), Signal(), Signal()
        icmp_head_ok = Signal()
        icmp_check = Signal(27)
        icmp_check_folded, icmp_reply_folded = Signal(17), Signal(17)
        icmp_ok = Signal()
        ip_checksum = Signal(16)
        icmp_checksum = Signal(16)
        address_sum, fixed_sum = Signal(19), Signal(19)
        word_sum = Signal(20)
        folded_once = Signal(17)

        with m.FSM():
            with m.State("RECEIVE"):
                byte = self.i.payload.data
                # The header's bytes are always taken at once (``in_payload`` is low before
                # byte 42), so the wide register's enable needs neither ``ready`` nor index
                # comparators: one flag.
                with m.If(self.i.valid & in_header):
                    m.d.sync += header.eq(Cat(byte, header[:-8]))
                    with m.If(index == HEADER_BYTES - 1):
                        m.d.sync += in_header.eq(0)
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
                    with m.If((index >= 14) & (index < ICMP_OFFSET)):
                        m.d.sync += ip_sum.eq(ip_sum + word)
                    # The ICMP sum of the reply: type (byte 34) and checksum (36, 37) as 0.
                    # (The header register's fields line up only from byte 42 on, so the
                    # IPv4 total length the ICMP sum needs from byte 34 is kept apart.)
                    with m.If((index == 16) | (index == 17)):
                        m.d.sync += early_total_length.eq(Cat(byte, early_total_length[:8]))
                    with m.If(index == 17):
                        m.d.sync += [
                            icmp_end.eq(Cat(byte, early_total_length[:8]) + 14),
                            # Bit 16 set: the total length is below 20 (no datagram fits).
                            udp_length_limit.eq(Cat(byte, early_total_length[:8]) - 20),
                        ]
                    with m.If((index >= ICMP_OFFSET) & (index < icmp_end)
                              & (index != 34) & (index != 36) & (index != 37)):
                        m.d.sync += icmp_sum.eq(icmp_sum + word)
                    with m.If(index >= ICMP_OFFSET):
                        m.d.comb += [
                            echo_write.addr.eq(index - ICMP_OFFSET),
                            echo_write.data.eq(byte),
                            echo_write.en.eq(1),
                        ]
                    with m.If(self.i.payload.last):
                        m.next = "CHECK"

            with m.State("CHECK"):
                frame_length = index
                # The frame has ended; its header's checks into flip-flops (and the
                # reply checksums' first sums), so CLASSIFY is a short decision.
                mac_ok_now, _ = checks(field)
                m.d.sync += [
                    mac_ok.eq(mac_ok_now),
                    # From byte 40 (a frame that reached CHECK without it is too short to
                    # be counted by its UDP length).
                    udp_length_ok.eq(udp_length_fits),
                    ip_ok.eq((field(14, 1) == 0x45) & ip_header_ok
                             & ((field(20, 1) & 0x3F) == 0) & (field(21, 1) == 0)),
                    ip_for_us.eq(field(30, 4) == self.board_ip),
                    port_ok.eq(destination_port == self.control_port),
                    arp_request.eq(is_arp_request_head(field(14, 8))),
                    arp_for_us.eq(field(38, 4) == self.board_ip),
                    is_arp.eq(ethertype == ETHERTYPE_ARP),
                    is_ipv4.eq(ethertype == ETHERTYPE_IPV4),
                    is_udp.eq(protocol == IP_PROTOCOL_UDP),
                    is_icmp.eq(protocol == IP_PROTOCOL_ICMP),
                    short.eq(frame_length < HEADER_BYTES),
                    icmp_head_ok.eq((total_length >= 28) & (frame_length >= total_length + 14)
                                    & (field(34, 1) == 8) & (field(35, 1) == 0)),
                    icmp_check.eq(icmp_sum + 0x0800 + field(36, 2)),
                    icmp_reply_folded.eq(icmp_sum[:16] + icmp_sum[16:]),
                    address_sum.eq(self.board_ip[16:] + self.board_ip[:16]
                                   + field(26, 2) + field(28, 2)),
                    fixed_sum.eq(Const(0x4500 + (REPLY_TTL << 8 | IP_PROTOCOL_ICMP), 17)
                                 + total_length + field(18, 2)),
                    last_index.eq(total_length + 13),
                    # The ARP reply, whether or not it is one: CLASSIFY decides.
                    reply_bytes.eq(Cat(*arp_reply_bytes(field(22, 6), field(28, 4),
                                                        self.board_mac, self.board_ip))),
                ]
                m.next = "FOLD"

            with m.State("FOLD"):
                m.d.sync += [
                    icmp_check_folded.eq(icmp_check[:16] + icmp_check[16:]),
                    icmp_checksum.eq(~(icmp_reply_folded[:16] + icmp_reply_folded[16])[:16]),
                    word_sum.eq(address_sum + fixed_sum),
                ]
                m.next = "CLASSIFY"

            with m.State("CLASSIFY"):
                m.d.sync += [
                    index.eq(0), ip_sum.eq(0), icmp_sum.eq(0), in_payload.eq(0),
                    in_header.eq(1),
                    out_index.eq(0), from_memory.eq(0),
                    echo_address.eq(ECHO_REPLY_HEADER_BYTES - ICMP_OFFSET),
                    folded_once.eq(word_sum[:16] + word_sum[16:]),
                ]
                m.d.comb += icmp_ok.eq(
                    icmp_head_ok
                    & ((icmp_check_folded[:16] + icmp_check_folded[16])[:16] == 0xFFFF))
                m.next = "RECEIVE"

                def count(name: str) -> None:
                    counter = getattr(self, name)
                    m.d.sync += counter.eq(counter + 1)

                with m.If(short):
                    count("dropped_other")
                with m.Elif(~mac_ok):
                    count("dropped_mac")
                with m.Elif(is_arp):
                    with m.If(~arp_request):
                        count("dropped_other")
                    with m.Elif(~arp_for_us):
                        count("dropped_ip")
                    with m.Else():
                        count("arp_answered")
                        m.next = "ARP_REPLY"
                with m.Elif(is_ipv4):
                    with m.If(~ip_ok):
                        count("dropped_other")
                    with m.Elif(~ip_for_us):
                        count("dropped_ip")
                    with m.Elif(is_udp):
                        with m.If(~udp_length_ok):
                            count("dropped_other")
                        with m.Elif(~port_ok):
                            count("dropped_port")
                        with m.Else():
                            count("datagrams")
                    with m.Elif(is_icmp & icmp_ok):
                        count("ping_answered")
                        m.next = "ECHO_CHECKSUM"
                    with m.Else():
                        count("dropped_other")
                with m.Else():
                    count("dropped_other")

            with m.State("ARP_REPLY"):
                m.d.comb += [
                    self.reply.valid.eq(1),
                    self.reply.payload.data.eq(reply_bytes[:8]),
                    self.reply.payload.last.eq(out_index == ARP_REPLY_BYTES - 1),
                ]
                with m.If(taken):
                    m.d.sync += [out_index.eq(out_index + 1), reply_bytes.eq(reply_bytes >> 8)]
                    with m.If(self.reply.payload.last):
                        m.next = "RECEIVE"

            with m.State("ECHO_CHECKSUM"):
                m.d.sync += ip_checksum.eq(~(folded_once[:16] + folded_once[16])[:16])
                m.next = "ECHO_LOAD"

            # The message's bytes come from the block RAM one read ahead of their turn
            # (``echo_byte`` holds the one due, the RAM's output the one after), so the
            # RAM's slow output only ever reaches a flip-flop.
            with m.State("ECHO_LOAD"):
                reply_header = echo_reply_header_bytes(
                    field(6, 6), self.board_mac, total_length, field(18, 2), ip_checksum,
                    self.board_ip, field(26, 4), icmp_checksum)
                m.d.sync += [reply_bytes.eq(Cat(*reply_header)),
                             echo_address.eq(echo_address + 1)]
                m.d.comb += [echo_read.addr.eq(echo_address), echo_read.en.eq(1)]
                m.next = "ECHO_PRIME"

            with m.State("ECHO_PRIME"):
                m.d.sync += [echo_byte.eq(echo_read.data), echo_address.eq(echo_address + 1)]
                m.d.comb += [echo_read.addr.eq(echo_address), echo_read.en.eq(1)]
                m.next = "ECHO_REPLY"

            with m.State("ECHO_REPLY"):
                m.d.comb += [
                    echo_read.addr.eq(echo_address),
                    echo_read.en.eq(taken & from_memory),
                    self.reply.valid.eq(1),
                    self.reply.payload.data.eq(Mux(from_memory, echo_byte, reply_bytes[:8])),
                    self.reply.payload.last.eq(out_index == last_index),
                ]
                with m.If(taken):
                    m.d.sync += [out_index.eq(out_index + 1), reply_bytes.eq(reply_bytes >> 8)]
                    with m.If(out_index == ECHO_REPLY_HEADER_BYTES - 1):
                        m.d.sync += from_memory.eq(1)
                    with m.If(from_memory):
                        m.d.sync += [echo_byte.eq(echo_read.data),
                                     echo_address.eq(echo_address + 1)]
                    with m.If(self.reply.payload.last):
                        m.next = "RECEIVE"
        return m


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
