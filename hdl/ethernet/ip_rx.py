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


def _folds_to_ones(folded_once):
    """Whether a sum folded once (17 bits: 16 and the carry) folds to 0xFFFF, the one's
    complement sum of a block whose checksum is right: ``(low + carry)[:16] == 0xFFFF``
    without the adder (low 0xFFFF and no carry, or 0xFFFE and a carry)."""
    low, carry = folded_once[:16], folded_once[16]
    return low[1:].all() & (low[0] ^ carry)


class FrameDispatcher(wiring.Component):
    """Takes good Ethernet frames, answers ARP and ping, and passes command datagrams on.

    Each frame's first 42 bytes are kept in a shift register; the IPv4 header's checksum and
    the ICMP message's checksum are summed as the bytes pass (plain sums, folded to one's
    complement after the header or the frame). A frame's end is registered as its last
    byte is taken, its checks in the next cycle, its sums folded in the one after, and it
    is classified in the fourth, while ``i`` waits (short stages for 125 MHz). The order
    is the counters' precedence:

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
        r = _Registers()
        self._address_matches(m, r)
        self._delivery(m, r)
        echo_read_en, echo_read_data = self._echo_buffer(m, r)
        m.d.comb += [self.frame_mac.eq(r.field(6, 6)), self.frame_ip.eq(r.field(26, 4)),
                     self.frame_port.eq(r.field(34, 2))]
        self._receive(m, r)
        with m.FSM():
            with m.State("RECEIVE"):
                with m.If(~r.receiving):
                    m.next = "CHECK"
            with m.State("CHECK"):
                self._check(m, r)
                m.next = "FOLD"
            with m.State("FOLD"):
                m.d.sync += [
                    r.icmp_ok.eq(r.icmp_head_ok & _folds_to_ones(
                        r.icmp_check[:16] + r.icmp_check[16:])),
                    r.icmp_checksum.eq(
                        ~(r.icmp_reply_folded[:16] + r.icmp_reply_folded[16])[:16]),
                    r.word_sum.eq(r.address_sum + r.fixed_sum),
                ]
                m.next = "CLASSIFY"
            with m.State("CLASSIFY"):
                self._classify(m, r)
            with m.State("ARP_REPLY"):
                self._arp_reply(m, r)
            self._echo_reply(m, r, echo_read_en, echo_read_data)
        return m

    def _address_matches(self, m: Module, r: "_Registers") -> None:
        """The destination MAC, IPv4 address and UDP port compared with the board's as each
        is complete: while the byte after it is at ``i``, by its fixed place at the bottom
        of the header register (which holds still until that byte is taken), so that the
        wide comparisons end at flip-flops of their own and the checks at byte 40 and in
        CHECK read one flag each."""
        with m.If(r.index == 6):
            destination = r.field_after(6, 0, 6)
            m.d.sync += [r.to_board_mac.eq(destination == self.board_mac),
                         r.to_broadcast.eq(destination == 0xFFFF_FFFF_FFFF)]
        with m.If(r.index == 34):
            m.d.sync += r.to_board_ip.eq(r.field_after(34, 30, 4) == self.board_ip)
        with m.If(r.index == 38):
            m.d.sync += r.to_control_port.eq(r.field_after(38, 36, 2) == self.control_port)

    def _checks(self, r: "_Registers", field):
        """The header checks, on the header register as ``field`` reads it."""
        mac_ok = r.to_board_mac | (r.to_broadcast & (field(12, 2) == ETHERTYPE_ARP))
        udp_length = field(38, 2)
        udp_length_ok = ((udp_length >= 8) & ~r.udp_length_limit[16]
                         & (udp_length <= r.udp_length_limit[:16]))
        return mac_ok, udp_length_ok

    def _delivery(self, m: Module, r: "_Registers") -> None:
        """Whether a datagram's payload goes to ``command``: its header checks are registered
        while byte 40 is at ``i`` (bytes 0..39 are in the register: every field they need,
        up to the UDP length at 38..39), combined into one flag when byte 41 is taken, so
        that from byte 42 on the payload path starts at flip-flops."""
        at40 = r.field_at40
        with m.If(r.index == HEADER_BYTES - 2):
            mac_ok_early, udp_length_ok_early = self._checks(r, at40)
            m.d.sync += [
                r.early[0].eq(mac_ok_early & (at40(12, 2) == ETHERTYPE_IPV4)),
                r.early[1].eq((at40(14, 1) == 0x45) & ((at40(20, 1) & 0x3F) == 0)
                              & (at40(21, 1) == 0) & (at40(23, 1) == IP_PROTOCOL_UDP)),
                r.early[2].eq(r.to_board_ip & r.to_control_port),
                r.early[3].eq(udp_length_ok_early & (at40(38, 2) > 8)),
                r.udp_length_fits.eq(udp_length_ok_early),
                r.payload_last.eq(at40(38, 2) + (HEADER_BYTES - 9)),
            ]
        # Byte 42 is payload if the datagram is delivered and has any.
        with m.If((r.index == HEADER_BYTES - 1) & self.i.valid & self.i.ready):
            m.d.sync += r.in_payload.eq(Cat(*r.early, r.ip_header_ok).all())
        # Later bytes are, up to the payload's last (registered, so ``command.valid`` and
        # ``i.ready`` start at flip-flops).
        with m.Elif((r.index >= HEADER_BYTES) & self.i.valid & self.i.ready):
            m.d.sync += r.in_payload.eq(r.in_payload & (r.index != r.payload_last))
        # The IPv4 header sum is complete from byte 34; folded and checked while bytes
        # 35..41 pass (registered twice, so it is ready at byte 41).
        m.d.sync += [
            r.ip_sum_folded.eq(r.ip_sum[:16] + r.ip_sum[16:]),
            r.ip_header_ok.eq(_folds_to_ones(r.ip_sum_folded)),
        ]

    def _echo_buffer(self, m: Module, r: "_Registers"):
        """The echo request's message RAM. Returns its read enable (to drive) and its read
        data: the byte at ``echo_address`` in the cycle after the enable is high, held
        while it is low (a synchronous read port's behaviour).

        Its ports start at flip-flops: a message byte is written the cycle after it is
        taken, and the read address is ``echo_address`` itself. The read port is an
        asynchronous one and the register after it, which yosys merges into the block RAM's
        read register and, with ``no_rw_check``, without read/write collision logic (which
        would compare the two addresses): reads and writes never meet, the reply being read
        at least four cycles after the frame's last byte."""
        m.submodules.echo = echo = Memory(shape=8, depth=ECHO_BUFFER_BYTES, init=[],
                                          attrs={"no_rw_check": 1})
        echo_write = echo.write_port()
        echo_read = echo.read_port(domain="comb")
        read_en = Signal()
        read_data = Signal(8, reset_less=True)
        m.d.sync += r.echo_write_pending.eq(0)
        m.d.comb += [
            echo_write.addr.eq(r.echo_write_address),
            echo_write.data.eq(r.echo_write_byte),
            echo_write.en.eq(r.echo_write_pending),
            echo_read.addr.eq(r.echo_address),
        ]
        with m.If(read_en):
            m.d.sync += read_data.eq(echo_read.data)
        return read_en, read_data

    def _receive(self, m: Module, r: "_Registers") -> None:
        """While ``receiving``: the frame's bytes into the header register, the sums, the
        echo buffer and (a delivered datagram's payload) ``command``."""
        # Outside the state machine, under ``receiving`` (high only in RECEIVE), so that
        # ``i.ready`` and the enables of the frame's registers decode no state. The frame's
        # end lowers it as the last byte is taken; RECEIVE then goes on to CHECK (nothing
        # is taken meanwhile), so the state register's next-state logic has no handshake.
        with m.If(r.receiving):
            index, byte = r.index, self.i.payload.data
            # The header's bytes are always taken at once (``in_payload`` is low before byte
            # 42), so the wide register's enable needs neither ``ready`` nor index comparators.
            with m.If(self.i.valid & r.in_header):
                m.d.sync += r.header.eq(Cat(byte, r.header[:-8]))
                with m.If(index == HEADER_BYTES - 1):
                    m.d.sync += r.in_header.eq(0)
            with m.If(r.in_payload):
                m.d.comb += [
                    self.command.valid.eq(self.i.valid),
                    self.command.payload.eq(byte),
                    self.i.ready.eq(self.command.ready),
                ]
                with m.If((index == HEADER_BYTES) & self.command.ready & self.i.valid):
                    m.d.sync += [
                        self.sender_mac.eq(r.field(6, 6)),
                        self.sender_ip.eq(r.field(26, 4)),
                        self.sender_port.eq(r.field(34, 2)),
                        self.sender_valid.eq(1),
                    ]
            with m.Else():
                m.d.comb += self.i.ready.eq(1)
            # The header's sums and fields need no ``ready`` either, and which sum a byte joins
            # is a flag registered as ``index`` reaches it, so the sums' enables are a gate or
            # two from flip-flops.
            word = Mux(index[0], byte, Cat(Const(0, 8), byte))
            with m.If(self.i.valid & r.in_header & r.ip_header_byte):
                m.d.sync += r.ip_sum.eq(r.ip_sum + word)
            # The IPv4 total length, for the ICMP sum's end and the UDP length check: taken
            # from the header register while byte 18 is at ``i`` (bytes 16 and 17 then at its
            # bottom, and the register still until byte 18 is taken), so its enable is one
            # comparison. (The register's fields line up only from byte 42 on.)
            with m.If(index == 18):
                total = r.field_after(18, 16, 2)
                m.d.sync += [
                    r.icmp_last.eq(total + 13),
                    # Bit 16 set: the total length is below 20 (no datagram fits).
                    r.udp_length_limit.eq(total - 20),
                ]
            with m.If(self.i.valid & self.i.ready):
                with m.If(index != 2047):
                    # The flags of the next byte (index + 1). The ICMP sum is the reply's:
                    # type (byte 34) and checksum (36, 37) left out, as 0.
                    m.d.sync += [
                        index.eq(index + 1),
                        r.ip_header_byte.eq((index >= 13) & (index < ICMP_OFFSET - 1)),
                        r.icmp_byte.eq((index >= ICMP_OFFSET - 1) & (index < r.icmp_last)
                                       & (index != 33) & (index != 35) & (index != 36)),
                        r.message_byte.eq(index >= ICMP_OFFSET - 1),
                    ]
                with m.If(r.icmp_byte):
                    m.d.sync += r.icmp_sum.eq(r.icmp_sum + word)
                with m.If(r.message_byte):
                    m.d.sync += [r.echo_write_address.eq(index - ICMP_OFFSET),
                                 r.echo_write_byte.eq(byte), r.echo_write_pending.eq(1)]
                with m.If(self.i.payload.last):
                    m.d.sync += r.receiving.eq(0)

    def _check(self, m: Module, r: "_Registers") -> None:
        """State CHECK: the frame has ended; its header's checks into flip-flops (and the
        reply checksums' first sums), so CLASSIFY is a short decision."""
        field, frame_length = r.field, r.index
        total_length = field(16, 2)
        mac_ok_now, _ = self._checks(r, field)
        m.d.sync += [
            r.mac_ok.eq(mac_ok_now),
            # From byte 40 (a frame that reached CHECK without it is too short to be
            # counted by its UDP length).
            r.udp_length_ok.eq(r.udp_length_fits),
            r.ip_ok.eq((field(14, 1) == 0x45) & r.ip_header_ok
                       & ((field(20, 1) & 0x3F) == 0) & (field(21, 1) == 0)),
            r.ip_for_us.eq(r.to_board_ip),
            r.port_ok.eq(r.to_control_port),
            r.arp_request.eq(is_arp_request_head(field(14, 8))),
            r.arp_for_us.eq(field(38, 4) == self.board_ip),
            r.is_arp.eq(field(12, 2) == ETHERTYPE_ARP),
            r.is_ipv4.eq(field(12, 2) == ETHERTYPE_IPV4),
            r.is_udp.eq(field(23, 1) == IP_PROTOCOL_UDP),
            r.is_icmp.eq(field(23, 1) == IP_PROTOCOL_ICMP),
            r.short.eq(frame_length < HEADER_BYTES),
            r.icmp_head_ok.eq((total_length >= 28) & (frame_length >= total_length + 14)
                              & (field(34, 1) == 8) & (field(35, 1) == 0)),
            r.icmp_check.eq(r.icmp_sum + 0x0800 + field(36, 2)),
            r.icmp_reply_folded.eq(r.icmp_sum[:16] + r.icmp_sum[16:]),
            r.address_sum.eq(self.board_ip[16:] + self.board_ip[:16]
                             + field(26, 2) + field(28, 2)),
            r.fixed_sum.eq(Const(0x4500 + (REPLY_TTL << 8 | IP_PROTOCOL_ICMP), 17)
                           + total_length + field(18, 2)),
            r.before_last_index.eq(total_length + 12),
            # The ARP reply, whether or not it is one: CLASSIFY decides.
            r.reply_bytes.eq(Cat(*arp_reply_bytes(field(22, 6), field(28, 4),
                                                  self.board_mac, self.board_ip))),
        ]

    def _classify(self, m: Module, r: "_Registers") -> None:
        """State CLASSIFY: count the frame's fate, start its reply if it has one, and make
        ready for the next frame."""
        m.d.sync += [
            r.index.eq(0), r.ip_sum.eq(0), r.icmp_sum.eq(0), r.in_payload.eq(0),
            r.ip_header_byte.eq(0), r.icmp_byte.eq(0), r.message_byte.eq(0),
            r.in_header.eq(1),
            r.out_index.eq(0), r.from_memory.eq(0), r.reply_last.eq(0), r.receiving.eq(1),
            r.echo_address.eq(ECHO_REPLY_HEADER_BYTES - ICMP_OFFSET),
            r.folded_once.eq(r.word_sum[:16] + r.word_sum[16:]),
        ]
        m.next = "RECEIVE"

        def count(name: str) -> None:
            counter = getattr(self, name)
            m.d.sync += counter.eq(counter + 1)

        with m.If(r.short):
            count("dropped_other")
        with m.Elif(~r.mac_ok):
            count("dropped_mac")
        with m.Elif(r.is_arp):
            with m.If(~r.arp_request):
                count("dropped_other")
            with m.Elif(~r.arp_for_us):
                count("dropped_ip")
            with m.Else():
                count("arp_answered")
                m.d.sync += r.receiving.eq(0)
                m.next = "ARP_REPLY"
        with m.Elif(r.is_ipv4):
            with m.If(~r.ip_ok):
                count("dropped_other")
            with m.Elif(~r.ip_for_us):
                count("dropped_ip")
            with m.Elif(r.is_udp):
                with m.If(~r.udp_length_ok):
                    count("dropped_other")
                with m.Elif(~r.port_ok):
                    count("dropped_port")
                with m.Else():
                    count("datagrams")
            with m.Elif(r.is_icmp & r.icmp_ok):
                count("ping_answered")
                m.d.sync += r.receiving.eq(0)
                m.next = "ECHO_CHECKSUM"
            with m.Else():
                count("dropped_other")
        with m.Else():
            count("dropped_other")

    def _arp_reply(self, m: Module, r: "_Registers") -> None:
        """State ARP_REPLY: the reply's 42 bytes shifted out of ``reply_bytes``."""
        m.d.comb += [
            self.reply.valid.eq(1),
            self.reply.payload.data.eq(r.reply_bytes[:8]),
            self.reply.payload.last.eq(r.reply_last),
        ]
        with m.If(self.reply.valid & self.reply.ready):
            m.d.sync += [r.out_index.eq(r.out_index + 1), r.reply_bytes.eq(r.reply_bytes >> 8),
                         r.reply_last.eq(r.out_index == ARP_REPLY_BYTES - 2)]
            with m.If(self.reply.payload.last):
                m.d.sync += r.receiving.eq(1)
                m.next = "RECEIVE"

    def _echo_reply(self, m: Module, r: "_Registers", read_en, read_data) -> None:
        """States ECHO_CHECKSUM to ECHO_REPLY: the reply's IPv4 checksum, its header, then
        the message's bytes from the block RAM one read ahead of their turn (``echo_byte``
        holds the one due, the RAM's output the one after), so the RAM's slow output only
        ever reaches a flip-flop."""
        taken = self.reply.valid & self.reply.ready
        field = r.field
        with m.State("ECHO_CHECKSUM"):
            m.d.sync += r.ip_checksum.eq(~(r.folded_once[:16] + r.folded_once[16])[:16])
            m.next = "ECHO_LOAD"

        with m.State("ECHO_LOAD"):
            reply_header = echo_reply_header_bytes(
                field(6, 6), self.board_mac, field(16, 2), field(18, 2), r.ip_checksum,
                self.board_ip, field(26, 4), r.icmp_checksum)
            m.d.sync += [r.reply_bytes.eq(Cat(*reply_header)),
                         r.echo_address.eq(r.echo_address + 1)]
            m.d.comb += read_en.eq(1)
            m.next = "ECHO_PRIME"

        with m.State("ECHO_PRIME"):
            m.d.sync += [r.echo_byte.eq(read_data), r.echo_address.eq(r.echo_address + 1)]
            m.d.comb += read_en.eq(1)
            m.next = "ECHO_REPLY"

        with m.State("ECHO_REPLY"):
            m.d.comb += [
                read_en.eq(taken & r.from_memory),
                self.reply.valid.eq(1),
                self.reply.payload.data.eq(Mux(r.from_memory, r.echo_byte, r.reply_bytes[:8])),
                self.reply.payload.last.eq(r.reply_last),
            ]
            with m.If(taken):
                m.d.sync += [r.out_index.eq(r.out_index + 1),
                             r.reply_last.eq(r.out_index == r.before_last_index),
                             r.reply_bytes.eq(r.reply_bytes >> 8)]
                with m.If(r.out_index == ECHO_REPLY_HEADER_BYTES - 1):
                    m.d.sync += r.from_memory.eq(1)
                with m.If(r.from_memory):
                    m.d.sync += [r.echo_byte.eq(read_data),
                                 r.echo_address.eq(r.echo_address + 1)]
                with m.If(self.reply.payload.last):
                    m.d.sync += r.receiving.eq(1)
                    m.next = "RECEIVE"


class _Registers:
    """The dispatcher's registers, shared by the parts of its ``elaborate``."""

    def __init__(self):
        self.header = Signal(8 * HEADER_BYTES)
        self.index = Signal(range(2048))            # of the byte now at ``i``, saturating
        self.in_header = Signal(init=1)             # the byte at ``i`` is one of the first 42
        # One's complement sums, kept as plain sums and folded after the frame (the same
        # result, and one short adder per byte instead of two chained ones).
        self.ip_sum = Signal(20)
        self.icmp_sum = Signal(27)
        self.icmp_last = Signal(17)                 # 13 + IPv4 total length
        # Which of the sums, and the echo buffer, the byte at ``i`` goes into.
        self.ip_header_byte, self.icmp_byte, self.message_byte = Signal(), Signal(), Signal()
        # The longest UDP datagram the IPv4 total length allows (total - 20), from byte 18
        # on, so that the UDP length check at byte 40 is one comparison.
        self.udp_length_limit = Signal(17)
        # Delivery to ``command`` (see ``_delivery``).
        self.payload_last = Signal(17)              # index of the payload's last byte
        self.in_payload = Signal()                  # the byte at ``i`` goes to ``command``
        self.ip_sum_folded = Signal(17)
        self.ip_header_ok = Signal()
        self.early = [Signal(name=f"deliver_check_{k}") for k in range(4)]
        self.udp_length_fits = Signal()             # 8 <= UDP length <= IP total - 20
        # The frame's destination is the board's (see ``_address_matches``).
        self.to_board_mac, self.to_broadcast = Signal(), Signal()
        self.to_board_ip, self.to_control_port = Signal(), Signal()
        # Classification, registered in CHECK from the frame's header and sums.
        self.mac_ok, self.udp_length_ok = Signal(), Signal()
        self.ip_ok, self.ip_for_us, self.port_ok = Signal(), Signal(), Signal()
        self.arp_request, self.arp_for_us = Signal(), Signal()
        self.is_arp, self.is_ipv4 = Signal(), Signal()
        self.is_udp, self.is_icmp, self.short = Signal(), Signal(), Signal()
        self.icmp_head_ok = Signal()
        self.icmp_check = Signal(27)
        self.icmp_reply_folded = Signal(17)
        self.icmp_ok = Signal()                     # an echo request we answer (from FOLD)
        self.ip_checksum = Signal(16)
        self.icmp_checksum = Signal(16)
        self.address_sum, self.fixed_sum = Signal(19), Signal(19)
        self.word_sum = Signal(20)
        self.folded_once = Signal(17)
        # Replies.
        self.out_index = Signal(range(2048))
        self.before_last_index = Signal(range(2048))    # of the echo reply's last byte, - 1
        self.reply_last = Signal()                  # the reply's byte now offered is its last
        # In RECEIVE and the frame's last byte not yet taken (see ``_receive``).
        self.receiving = Signal(init=1)
        self.reply_bytes = Signal(8 * ARP_REPLY_BYTES)  # shifted out, first byte at the bottom
        self.from_memory = Signal()                 # the echo reply is past its header
        self.echo_address = Signal(range(ECHO_BUFFER_BYTES))    # next to read from the RAM
        self.echo_byte = Signal(8)                  # the message byte now due, prefetched
        # The echo buffer's write port, registered (see ``_echo_buffer``).
        self.echo_write_address = Signal(range(ECHO_BUFFER_BYTES))
        self.echo_write_byte = Signal(8)
        self.echo_write_pending = Signal()

    def field_after(self, shifted: int, offset: int, length: int):
        """Frame bytes ``offset..offset+length-1`` as a big-endian value, once ``shifted``
        bytes have entered the header register."""
        low = (shifted - offset - length) * 8
        return self.header[low:low + 8 * length]

    def field(self, offset: int, length: int):
        """Frame bytes ``offset..offset+length-1`` once the whole header is in."""
        return self.field_after(HEADER_BYTES, offset, length)

    def field_at40(self, offset: int, length: int):
        """Frame bytes ``offset..offset+length-1`` while byte 40 is at ``i``."""
        return self.field_after(HEADER_BYTES - 2, offset, length)


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
