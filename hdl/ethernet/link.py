"""The Ethernet link of the acquisition system: wire frames and commands over UDP, on GMII.

:class:`EthernetLink` is what :class:`~spikeforge.hdl.top.AcquisitionSystem` puts behind the
framer when ``config.link == "ethernet"`` (docs/architecture.md, "Ethernet link in the
system"). It spans three clock domains and owns every crossing between them.
"""

from amaranth.hdl import Cat, Const, DomainRenamer, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.ethernet import EthernetConfig
from spikeforge.firmware.registers import ETHERNET_COUNTERS
from spikeforge.firmware.wire import REPLY_FRAME_BYTES

from .crossing import StreamCrossing
from .frame_fifo import FrameFifo
from .ip_rx import FrameDispatcher, LearnedHost
from .layouts import FrameByteLayout
from .mac_rx import MACReceiver
from .mac_tx import MACTransmitter
from .pipeline import StreamRegister
from .tx_arbiter import TxArbiter
from .udp_tx import UDPTransmitter

__all__ = ["EthernetLink", "Snapshot", "COUNTER_PORTS", "SENDER_BYTES"]

#: The link's status counters, as port names (the registers' names in lower case).
COUNTER_PORTS = tuple(name.lower() for name in ETHERNET_COUNTERS)
#: Bytes that name a command datagram's sender ahead of its payload in the command crossing:
#: source MAC (6), source IP (4), source UDP port (2), each most significant byte first.
SENDER_BYTES = 12


class Snapshot(wiring.Component):
    """Copies a multi-bit value from one clock domain into another, never torn.

    A request/acknowledge loop that runs all the time: the ``to`` side toggles a request;
    the ``from`` side, seeing it (two-flip-flop synchronizer), captures ``i`` into a holding
    register and toggles its acknowledge; the ``to`` side, seeing that (two flip-flops),
    copies the holding register — which cannot change until the next request — to ``o`` and
    requests again. So ``o`` is always a value ``i`` had, at most about 3 cycles of each
    clock old plus one loop (about 6 + 6 cycles in all); a value held for longer than that
    always arrives. Every bit of ``i`` needs a flip-flop on each side, and the loop two
    synchronizers: cheaper than gray-coding each counter.

    Ports: ``i`` : in (domain ``from_domain``), ``o`` : out (domain ``to_domain``, reset
    value ``init``).
    """

    def __init__(self, width: int, from_domain: str, to_domain: str, init: int = 0):
        self._from, self._to, self._init = from_domain, to_domain, init
        super().__init__({"i": In(width, init=init), "o": Out(width, init=init)})

    def elaborate(self, platform):
        m = Module()
        width = len(self.i)
        request = Signal(name="snapshot_request")              # to-domain toggle
        acknowledge = Signal(name="snapshot_acknowledge")      # from-domain toggle
        request_seen = Signal(name="snapshot_request_seen")
        acknowledge_seen = Signal(name="snapshot_acknowledge_seen")
        held = Signal(width, init=self._init, name="snapshot_held")
        m.submodules.request_sync = FFSynchronizer(request, request_seen,
                                                   o_domain=self._from)
        m.submodules.acknowledge_sync = FFSynchronizer(acknowledge, acknowledge_seen,
                                                       o_domain=self._to)
        with m.If(request_seen != acknowledge):
            m.d[self._from] += [held.eq(self.i), acknowledge.eq(request_seen)]
        with m.If(acknowledge_seen == request):
            m.d[self._to] += [self.o.eq(held), request.eq(~request)]
        return m


class EthernetLink(wiring.Component):
    """The framer's wire frames out as UDP datagrams, commands in over UDP, on GMII.

    Clock domains: ``sync`` (the acquisition clock: ``data``, ``command``, ``reply``,
    ``accept``, the addresses and the counters), ``link`` (125 MHz transmit clock: the
    ``gmii_tx_*`` ports and the UDP/IP logic) and ``eth_rx`` (the PHY's 125 MHz receive
    clock: the ``gmii_rx_*`` ports and the MAC receiver).

    Transmit (``link``): ``data`` crosses from ``sync`` in a :class:`StreamCrossing` of
    ``data_fifo_bytes`` (it only back-pressures: the framer drops whole frames upstream when
    the link cannot keep up) -> :class:`UDPTransmitter` (one datagram per wire frame from
    ``data_port``; dropped and counted until a host is learned) -> :class:`TxArbiter` (ARP
    and echo replies first, then control replies, then data; between frames only) ->
    :class:`FrameFifo` (whole frames, so the MAC is never starved) -> :class:`MACTransmitter`
    -> ``gmii_tx_*``. The decoder's ``reply`` frames cross in their own :class:`StreamCrossing`
    and become datagrams from ``control_port`` to the learned host (held, not dropped,
    until a host is learned: a reply only follows a command, and its host).

    Receive: ``gmii_rx_*`` -> :class:`MACReceiver` (``eth_rx``; FCS, runts, giants;
    stores whole good frames and drops whole frames when full: ``eth_rx_overflows``) ->
    :class:`StreamCrossing` into ``link`` (whole frames are already stored, so it only
    back-pressures the MAC's buffer) -> :class:`FrameDispatcher` (ARP and ping answered to
    the arbiter; UDP to ``control_port`` streamed as command bytes) -> a :class:`StreamCrossing`
    of 9-bit entries into ``sync`` -> ``command`` (the
    :class:`~spikeforge.hdl.control.CommandDecoder`).

    Learning the host, across the domains: ahead of each command datagram's payload the
    link puts :data:`SENDER_BYTES` marked bytes (bit 8 set) naming its sender into the
    command crossing. On the ``sync`` side they are shifted into a sender register instead
    of being given to ``command``, and only while ``command.ready`` is high — the decoder
    takes no byte from a command's last until its reply is written — so at the decoder's
    ``accept`` the sender register names the sender of that command. A
    :class:`LearnedHost` in ``sync`` latches it at the first ``accept``; no strobe crosses a
    domain, and the sender travels with its bytes. The learned host and the board's
    addresses (``local_mac``, ``local_ip``, from registers) reach ``link`` through one
    :class:`Snapshot` (all fields from one ``sync`` cycle).

    Keyed builds (``keyed=True``, authenticated control): ``accept`` is the decoder's
    ``verified`` strobe, so the host is the sender of the first command whose tag *and*
    counter checked — a plain read, a forged, tampered or replayed command never makes its
    sender the data's destination. Replies that reach ``reply`` while no host is learned
    (answers to plain reads and refusals) are discarded whole in ``sync`` instead of held:
    held, a dozen plain reads after a reset would fill the decoder's reply buffer and it
    would drop every later command, the host's signed one too. The reply to the verified
    command itself is never discarded: the host is latched (at ``accept``) cycles before
    the decoder writes that reply. Without ``keyed`` no reply can exist before the host
    (every command carried out is an ``accept``), and nothing of this is built.

    Counters (:data:`COUNTER_PORTS`, ``sync``): counted in ``link`` (datagrams sent and
    dropped, ARP and ping answered, frames dropped by the filter) and ``eth_rx`` (FCS
    errors, receive overflows), each domain's set copied into ``sync`` by a
    :class:`Snapshot`: they read a few cycles late and never torn. 16-bit ones wrap.

    Ports
    -----
    data : stream of bytes in (``sync``), the framer's whole wire frames
    reply : stream of bytes in (``sync``), the command decoder's REPLY frames
    command : stream of bytes out (``sync``), command datagrams' payloads, to the decoder
    accept : in (``sync``), high for a cycle when the decoder carries a command out (keyed
        builds: an authenticated one, the decoder's ``verified``)
    local_mac, local_ip : in (``sync``), the board's addresses (reset: ``ethernet``)
    host_ip, host_valid : out (``sync``), the learned host
    <counter> : out (``sync``), one per :data:`COUNTER_PORTS`
    gmii_tx_data, gmii_tx_en, gmii_tx_er : out (``link``)
    gmii_rx_data, gmii_rx_dv, gmii_rx_er : in (``eth_rx``)
    """

    def __init__(self, ethernet: EthernetConfig | None = None, *, data_fifo_bytes: int = 64,
                 tx_fifo_bytes: int = 4096, rx_buffer_bytes: int = 4096,
                 keyed: bool = False):
        self._ethernet = EthernetConfig() if ethernet is None else ethernet
        self._keyed = keyed
        self._data_fifo_bytes = data_fifo_bytes
        self._tx_fifo_bytes = tx_fifo_bytes
        self._rx_buffer_bytes = rx_buffer_bytes
        super().__init__({
            "data": In(stream.Signature(8)),
            "reply": In(stream.Signature(8)),
            "command": Out(stream.Signature(8)),
            "accept": In(1),
            "local_mac": In(48, init=self._ethernet.mac),
            "local_ip": In(32, init=self._ethernet.ip),
            "host_ip": Out(32),
            "host_valid": Out(1),
            **{name: Out(32) for name in COUNTER_PORTS},
            "gmii_tx_data": Out(8), "gmii_tx_en": Out(1), "gmii_tx_er": Out(1),
            "gmii_rx_data": In(8), "gmii_rx_dv": In(1), "gmii_rx_er": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        ethernet = self._ethernet
        in_link = DomainRenamer("link")

        # -- the cores, in their domains ------------------------------------------------------
        data_udp = UDPTransmitter(ethernet, port=ethernet.data_port)
        reply_udp = UDPTransmitter(ethernet, port=ethernet.control_port)
        dispatcher = FrameDispatcher(ethernet)
        arbiter = TxArbiter(3)
        tx_fifo = FrameFifo(self._tx_fifo_bytes)
        mac_tx = MACTransmitter()
        mac_rx = MACReceiver(self._rx_buffer_bytes)
        m.submodules.data_udp = in_link(data_udp)
        m.submodules.reply_udp = in_link(reply_udp)
        m.submodules.dispatcher = in_link(dispatcher)
        m.submodules.arbiter = in_link(arbiter)
        m.submodules.tx_fifo = in_link(tx_fifo)
        m.submodules.mac_tx = in_link(mac_tx)
        m.submodules.mac_rx = DomainRenamer("eth_rx")(mac_rx)
        # The receive buffer's block RAM output ends at a flip-flop, not in the crossing.
        rx_out = StreamRegister(FrameByteLayout)
        m.submodules.rx_out = DomainRenamer("eth_rx")(rx_out)
        wiring.connect(m, mac_rx.o, rx_out.i)

        # -- crossings ---------------------------------------------------------------------------
        m.submodules.data_cdc = data_cdc = StreamCrossing(
            8, self._data_fifo_bytes, w_domain="sync", r_domain="link")
        m.submodules.reply_cdc = reply_cdc = StreamCrossing(
            8, 32, w_domain="sync", r_domain="link")
        m.submodules.rx_cdc = rx_cdc = StreamCrossing(
            9, 16, w_domain="eth_rx", r_domain="link")
        m.submodules.command_cdc = command_cdc = StreamCrossing(
            9, 32, w_domain="link", r_domain="sync")

        # Each crossing's read side leaves through a register slice: the async FIFO's
        # pointer logic and the consumer's state machine are then separate paths at 125 MHz.
        data_in = in_link(StreamRegister(8))
        reply_in = in_link(StreamRegister(8))
        rx_in = in_link(StreamRegister(FrameByteLayout))
        m.submodules.data_in, m.submodules.reply_in, m.submodules.rx_in = (
            data_in, reply_in, rx_in)
        for cdc, register in ((data_cdc, data_in), (reply_cdc, reply_in), (rx_cdc, rx_in)):
            m.d.comb += [
                register.i.payload.eq(cdc.o.payload),
                register.i.valid.eq(cdc.o.valid),
                cdc.o.ready.eq(register.i.ready),
            ]

        # sync -> link: addresses and the learned host, from one sync cycle.
        m.submodules.host = host = LearnedHost()
        to_link = Cat(self.local_mac, self.local_ip, host.host_mac, host.host_ip,
                      host.host_port, host.host_valid)
        init = ethernet.mac | ethernet.ip << 48
        m.submodules.to_link = to_link_snapshot = Snapshot(len(to_link), "sync", "link", init)
        m.d.comb += to_link_snapshot.i.eq(to_link)
        local_mac, local_ip = Signal(48), Signal(32)
        host_mac, host_ip, host_port, host_valid = Signal(48), Signal(32), Signal(16), Signal()
        m.d.comb += Cat(local_mac, local_ip, host_mac, host_ip, host_port,
                        host_valid).eq(to_link_snapshot.o)

        # -- transmit (link) ---------------------------------------------------------------------
        wiring.connect(m, data_in.o, data_udp.i)
        m.d.comb += [
            data_cdc.i.payload.eq(self.data.payload),
            data_cdc.i.valid.eq(self.data.valid),
            self.data.ready.eq(data_cdc.i.ready),
        ]
        self._reply_gate(m, reply_cdc, host)
        m.d.comb += [
            # Replies wait for the host (they only follow its command).
            reply_udp.i.payload.eq(reply_in.o.payload),
            reply_udp.i.valid.eq(reply_in.o.valid & host_valid),
            reply_in.o.ready.eq(reply_udp.i.ready & host_valid),
        ]
        for udp in (data_udp, reply_udp):
            m.d.comb += [
                udp.host_mac.eq(host_mac), udp.host_ip.eq(host_ip),
                udp.host_port.eq(host_port), udp.host_valid.eq(host_valid),
                udp.local_mac.eq(local_mac), udp.local_ip.eq(local_ip),
            ]
        wiring.connect(m, dispatcher.reply, arbiter.inputs[0])
        wiring.connect(m, reply_udp.o, arbiter.inputs[1])
        wiring.connect(m, data_udp.o, arbiter.inputs[2])
        wiring.connect(m, arbiter.o, tx_fifo.w)
        wiring.connect(m, tx_fifo.r, mac_tx.i)
        m.d.comb += [
            self.gmii_tx_data.eq(mac_tx.tx_data),
            self.gmii_tx_en.eq(mac_tx.tx_en),
            self.gmii_tx_er.eq(mac_tx.tx_er),
        ]

        # -- receive (eth_rx -> link) ------------------------------------------------------------
        m.d.comb += [
            mac_rx.rx_data.eq(self.gmii_rx_data),
            mac_rx.rx_dv.eq(self.gmii_rx_dv),
            mac_rx.rx_er.eq(self.gmii_rx_er),
            rx_cdc.i.payload.eq(rx_out.o.payload.as_value()),
            rx_cdc.i.valid.eq(rx_out.o.valid),
            rx_out.o.ready.eq(rx_cdc.i.ready),

            dispatcher.board_mac.eq(local_mac),
            dispatcher.board_ip.eq(local_ip),
        ]
        wiring.connect(m, rx_in.o, dispatcher.i)
        self._command_crossing(m, dispatcher, command_cdc)
        self._command_reader(m, command_cdc, host)

        # -- counters into sync ------------------------------------------------------------------
        filtered = Signal(16)
        m.d.comb += filtered.eq(dispatcher.dropped_mac[:16] + dispatcher.dropped_ip[:16]
                                + dispatcher.dropped_port[:16] + dispatcher.dropped_other[:16])
        link_counters = {
            "eth_datagrams_sent": data_udp.datagrams_sent,
            "eth_datagrams_dropped": data_udp.datagrams_dropped[:16],
            "eth_arp_answered": dispatcher.arp_answered[:16],
            "eth_ping_answered": dispatcher.ping_answered[:16],
            "eth_rx_filtered": filtered,
        }
        rx_counters = {
            "eth_fcs_errors": mac_rx.fcs_errors[:16],
            "eth_rx_overflows": mac_rx.overflows[:16],
        }
        for domain, counters in (("link", link_counters), ("eth_rx", rx_counters)):
            values = Cat(*counters.values())
            snapshot = Snapshot(len(values), domain, "sync")
            m.submodules[f"{domain}_counters"] = snapshot
            m.d.comb += snapshot.i.eq(values)
            offset = 0
            for name, value in counters.items():
                m.d.comb += getattr(self, name).eq(snapshot.o[offset:offset + len(value)])
                offset += len(value)
        m.d.comb += [self.host_ip.eq(host.host_ip), self.host_valid.eq(host.host_valid)]
        return m

    def _reply_gate(self, m: Module, reply_cdc: StreamCrossing, host: LearnedHost) -> None:
        """``sync``: ``reply`` into its crossing; keyed builds discard whole replies that
        start while no host is learned (see the class docstring)."""
        m.d.comb += reply_cdc.i.payload.eq(self.reply.payload)
        if not self._keyed:
            m.d.comb += [reply_cdc.i.valid.eq(self.reply.valid),
                         self.reply.ready.eq(reply_cdc.i.ready)]
            return
        position = Signal(range(REPLY_FRAME_BYTES), name="reply_position")
        discarding = Signal(name="reply_discarding")      # the reply under way is discarded
        drop = Signal()
        m.d.comb += [
            drop.eq(Mux(position == 0, ~host.host_valid, discarding)),
            reply_cdc.i.valid.eq(self.reply.valid & ~drop),
            self.reply.ready.eq(reply_cdc.i.ready | drop),
        ]
        with m.If(self.reply.valid & self.reply.ready):
            m.d.sync += position.eq(Mux(position == REPLY_FRAME_BYTES - 1, 0, position + 1))
            with m.If(position == 0):
                m.d.sync += discarding.eq(~host.host_valid)

    def _command_crossing(self, m: Module, dispatcher: FrameDispatcher,
                          command_cdc: StreamCrossing) -> None:
        """``link``: the dispatcher's command bytes into the crossing, each datagram's
        payload after :data:`SENDER_BYTES` marked bytes naming its sender (the frame's
        source fields, as the dispatcher's header register holds them)."""
        frame = dispatcher.i
        taken = frame.valid & frame.ready
        # The first command byte after a frame's end starts a new datagram (a datagram's
        # payload bytes all leave before its frame's last byte is taken).
        new_datagram = Signal(init=1)
        # The sender, from the dispatcher's header register (the first byte, the MAC's most
        # significant, on top).
        sender = Cat(dispatcher.frame_port, dispatcher.frame_ip, dispatcher.frame_mac)
        sender_index = Signal(range(SENDER_BYTES))
        command = dispatcher.command
        # Into the crossing through a register slice: the dispatcher's input stalls on
        # flip-flops, not on the async FIFO's pointer comparison.
        m.submodules.command_out = command_out = DomainRenamer("link")(StreamRegister(9))
        m.d.comb += [
            command_cdc.i.payload.eq(command_out.o.payload),
            command_cdc.i.valid.eq(command_out.o.valid),
            command_out.o.ready.eq(command_cdc.i.ready),
        ]
        # The sender's later bytes leave from a shift register loaded while the first one
        # waits (the header register holds still then: the payload is not taken until the
        # sender bytes are out), so each byte is a fixed slice, not a 12-way multiplexer.
        later = Signal(8 * (SENDER_BYTES - 1))
        with m.If(sender_index == 0):
            m.d.link += later.eq(sender[:-8])
        with m.If(command.valid & new_datagram):
            byte = Mux(sender_index == 0, sender[-8:], later[-8:])
            m.d.comb += [command_out.i.payload.eq(Cat(byte, Const(1, 1))),
                         command_out.i.valid.eq(1)]
            with m.If(command_out.i.ready):
                m.d.link += sender_index.eq(sender_index + 1)
                with m.If(sender_index != 0):
                    m.d.link += later.eq(Cat(Const(0, 8), later[:-8]))
                with m.If(sender_index == SENDER_BYTES - 1):
                    m.d.link += [sender_index.eq(0), new_datagram.eq(0)]
        with m.Else():
            m.d.comb += [command_out.i.payload.eq(Cat(command.payload, Const(0, 1))),
                         command_out.i.valid.eq(command.valid),
                         command.ready.eq(command_out.i.ready)]
        with m.If(taken & frame.payload.last):
            m.d.link += new_datagram.eq(1)

    def _command_reader(self, m: Module, command_cdc: StreamCrossing, host: LearnedHost) -> None:
        """``sync``: command bytes to ``command``; sender bytes into the sender register,
        only while the decoder takes bytes (so it names the sender of the command the
        decoder is on), and ``host`` latching it at the first ``accept``."""
        sender = Signal(8 * SENDER_BYTES)
        marked = command_cdc.o.payload[8]
        m.d.comb += [
            self.command.payload.eq(command_cdc.o.payload[:8]),
            self.command.valid.eq(command_cdc.o.valid & ~marked),
            command_cdc.o.ready.eq(self.command.ready),
            host.sender_port.eq(sender[:16]),
            host.sender_ip.eq(sender[16:48]),
            host.sender_mac.eq(sender[48:]),
            host.accept.eq(self.accept),
        ]
        with m.If(command_cdc.o.valid & marked & self.command.ready):
            m.d.sync += sender.eq(Cat(command_cdc.o.payload[:8], sender[:-8]))
