"""A stand-in for the acquisition system's Ethernet link, to test the virtual board's
Ethernet harness (``main_eth.cpp``) on its own: the same GMII ports, and an echo.

:class:`EthernetEcho` takes every good frame from ``gmii_rx`` (the real
:class:`~spikeforge.hdl.ethernet.mac_rx.MACReceiver`) and sends it back twice on ``gmii_tx``
(the real :class:`~spikeforge.hdl.ethernet.mac_tx.MACTransmitter`), with the Ethernet and
IPv4 addresses and the UDP ports swapped, so an IPv4/UDP datagram comes back to its sender
from the port it was sent to (the control port); the second copy comes from the data port
instead. Swapping keeps the IPv4 header checksum right, and the harness sends UDP checksum
0, so no checksum changes. It is not the board: it learns nothing, answers no ARP and
counts nothing.
"""

from amaranth.hdl import DomainRenamer, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.ethernet import DATA_PORT
from spikeforge.hdl.ethernet.frame_fifo import FrameFifo
from spikeforge.hdl.ethernet.mac_rx import MACReceiver
from spikeforge.hdl.ethernet.mac_tx import MACTransmitter

__all__ = ["EthernetEcho"]

#: Frame byte offsets swapped pairwise: (first, second, length).
_SWAPS = ((0, 6, 6),      # destination MAC <-> source MAC
          (26, 30, 4),    # IPv4 source <-> destination
          (34, 36, 2))    # UDP source port <-> destination port
_UDP_SOURCE_PORT = 34


def _source_offset(index: int) -> int:
    for first, second, length in _SWAPS:
        if first <= index < first + length:
            return index - first + second
        if second <= index < second + length:
            return index - second + first
    return index


class EthernetEcho(wiring.Component):
    """GMII echo (see the module docstring). Transmit in domain ``link``, receive sampled in
    domain ``eth_rx`` (the harness clocks both from one 125 MHz clock: the received bytes
    pass straight into ``link``, which only a stand-in may do).

    The ``config`` argument is taken (and ignored) so the stand-in is built like the
    acquisition system."""

    gmii_tx_data: Out(8)
    gmii_tx_en: Out(1)
    gmii_tx_er: Out(1)
    gmii_rx_data: In(8)
    gmii_rx_dv: In(1)
    gmii_rx_er: In(1)

    def __init__(self, config=None):
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx_data = Signal(8)
        rx_dv = Signal()
        rx_er = Signal()
        m.d.eth_rx += [rx_data.eq(self.gmii_rx_data), rx_dv.eq(self.gmii_rx_dv),
                       rx_er.eq(self.gmii_rx_er)]
        m.submodules.rx = rx = DomainRenamer("link")(MACReceiver())
        m.submodules.fifo = fifo = DomainRenamer("link")(FrameFifo())
        m.submodules.tx = tx = DomainRenamer("link")(MACTransmitter())
        m.d.comb += [rx.rx_data.eq(rx_data), rx.rx_dv.eq(rx_dv), rx.rx_er.eq(rx_er)]
        wiring.connect(m, fifo.r, tx.i)
        m.d.comb += [self.gmii_tx_data.eq(tx.tx_data), self.gmii_tx_en.eq(tx.tx_en),
                     self.gmii_tx_er.eq(tx.tx_er)]

        m.submodules.frame = frame = Memory(shape=8, depth=2048, init=[])
        write = frame.write_port(domain="link")
        read = frame.read_port(domain="comb")
        mapping = Memory(shape=11, depth=64, init=[_source_offset(i) for i in range(64)])
        m.submodules.mapping = mapping
        mapped = mapping.read_port(domain="comb")

        length = Signal(11)
        index = Signal(11)
        copy = Signal()
        m.d.comb += rx.o.ready.eq(0)
        with m.FSM(domain="link"):
            with m.State("RECEIVE"):
                m.d.comb += [rx.o.ready.eq(1), write.addr.eq(length),
                             write.data.eq(rx.o.payload.data), write.en.eq(rx.o.valid)]
                with m.If(rx.o.valid):
                    m.d.link += length.eq(length + 1)
                    with m.If(rx.o.payload.last):
                        m.d.link += [index.eq(0), copy.eq(0)]
                        m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [mapped.addr.eq(index[:6]),
                             read.addr.eq(Mux(index < 64, mapped.data, index)),
                             fifo.w.valid.eq(1),
                             fifo.w.payload.data.eq(read.data),
                             fifo.w.payload.last.eq(index == length - 1)]
                with m.If(copy & (index == _UDP_SOURCE_PORT)):
                    m.d.comb += fifo.w.payload.data.eq(DATA_PORT >> 8)
                with m.If(copy & (index == _UDP_SOURCE_PORT + 1)):
                    m.d.comb += fifo.w.payload.data.eq(DATA_PORT & 0xFF)
                with m.If(fifo.w.ready):
                    m.d.link += index.eq(index + 1)
                    with m.If(index == length - 1):
                        m.d.link += [index.eq(0), copy.eq(1)]
                        with m.If(copy):
                            m.d.link += length.eq(0)
                            m.next = "RECEIVE"
        return m
