"""The Ethernet transmit path in one component: wire frames in, RGMII out."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.ethernet import EthernetConfig

from .frame_fifo import FrameFifo
from .layouts import FrameByteLayout
from .mac_tx import MACTransmitter
from .rgmii_tx import RGMIITransmitter
from .tx_arbiter import TxArbiter
from .udp_tx import UDPTransmitter

__all__ = ["EthernetTransmitter", "MACOnRGMII"]


class EthernetTransmitter(wiring.Component):
    """Wire frames to UDP datagrams on the RGMII lines, with other frames between them.

    ``data`` (the framer's wire frames) -> :class:`UDPTransmitter` -> :class:`TxArbiter`
    (after ``frames[0..extra_inputs-1]``, which win between frames in that order: control
    replies built by a second ``UDPTransmitter(port=CONTROL_PORT)``, ARP and ping answers)
    -> :class:`FrameFifo` (store and forward: the MAC gets each frame without gaps) ->
    :class:`MACTransmitter` -> :class:`RGMIITransmitter`. All in one clock domain, the
    125 MHz link clock (``sync`` here; the integration renames it and crosses from the
    acquisition domain with an async FIFO before ``data``).

    Ports
    -----
    data : stream of bytes in, whole wire frames
    frames[k] : streams of :data:`FrameByteLayout` in, whole Ethernet frames (no FCS)
    host_mac, host_ip, host_port, host_valid, local_mac, local_ip, local_port : in
        As :class:`UDPTransmitter` (data datagrams only).
    datagrams_sent, datagrams_dropped : out (data datagrams)
    frames_sent, underruns : out (the MAC's; ``underruns`` stays 0 by construction)
    txd, tx_ctl, tx_clk : out, the RGMII lines (``pins=None``; else driven on ``pins``)
    """

    def __init__(self, ethernet: EthernetConfig | None = None, *, extra_inputs: int = 0,
                 fifo_depth: int = 4096, pins=None):
        self._ethernet = EthernetConfig() if ethernet is None else ethernet
        self._extra_inputs = extra_inputs
        self._fifo_depth = fifo_depth
        self._pins = pins
        members = {
            "data": In(stream.Signature(8)),
            "host_mac": In(48),
            "host_ip": In(32),
            "host_port": In(16),
            "host_valid": In(1),
            "local_mac": In(48, init=self._ethernet.mac),
            "local_ip": In(32, init=self._ethernet.ip),
            "local_port": In(16, init=self._ethernet.data_port),
            "datagrams_sent": Out(32),
            "datagrams_dropped": Out(32),
            "frames_sent": Out(32),
            "underruns": Out(16),
            "txd": Out(4),
            "tx_ctl": Out(1),
            "tx_clk": Out(1),
        }
        if extra_inputs:
            members["frames"] = In(stream.Signature(FrameByteLayout)).array(extra_inputs)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.udp = udp = UDPTransmitter(self._ethernet)
        m.submodules.arbiter = arbiter = TxArbiter(self._extra_inputs + 1)
        m.submodules.fifo = fifo = FrameFifo(self._fifo_depth)
        m.submodules.mac = mac = MACTransmitter()
        m.submodules.rgmii = rgmii = RGMIITransmitter(self._pins)

        wiring.connect(m, wiring.flipped(self.data), udp.i)
        for k in range(self._extra_inputs):
            wiring.connect(m, wiring.flipped(self.frames[k]), arbiter.inputs[k])
        wiring.connect(m, udp.o, arbiter.inputs[self._extra_inputs])
        wiring.connect(m, arbiter.o, fifo.w)
        wiring.connect(m, fifo.r, mac.i)
        m.d.comb += [
            udp.host_mac.eq(self.host_mac), udp.host_ip.eq(self.host_ip),
            udp.host_port.eq(self.host_port), udp.host_valid.eq(self.host_valid),
            udp.local_mac.eq(self.local_mac), udp.local_ip.eq(self.local_ip),
            udp.local_port.eq(self.local_port),
            self.datagrams_sent.eq(udp.datagrams_sent),
            self.datagrams_dropped.eq(udp.datagrams_dropped),
            self.frames_sent.eq(mac.frames_sent),
            self.underruns.eq(mac.underruns),
            rgmii.tx_data.eq(mac.tx_data), rgmii.tx_en.eq(mac.tx_en),
            rgmii.tx_er.eq(mac.tx_er),
            self.txd.eq(rgmii.txd), self.tx_ctl.eq(rgmii.tx_ctl),
            self.tx_clk.eq(rgmii.tx_clk),
        ]
        return m


class MACOnRGMII(wiring.Component):
    """:class:`MACTransmitter` driving :class:`RGMIITransmitter`: frames in, RGMII lines out.

    For a source that already guarantees whole frames without gaps (and for the MAC's own
    bench). Ports as the two components': ``i``, ``underruns``, ``frames_sent``, ``txd``,
    ``tx_ctl``, ``tx_clk``.
    """

    i: In(stream.Signature(FrameByteLayout))
    underruns: Out(16)
    frames_sent: Out(32)
    txd: Out(4)
    tx_ctl: Out(1)
    tx_clk: Out(1)

    def __init__(self, pins=None):
        self._pins = pins
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.mac = mac = MACTransmitter()
        m.submodules.rgmii = rgmii = RGMIITransmitter(self._pins)
        wiring.connect(m, wiring.flipped(self.i), mac.i)
        m.d.comb += [
            rgmii.tx_data.eq(mac.tx_data), rgmii.tx_en.eq(mac.tx_en), rgmii.tx_er.eq(mac.tx_er),
            self.underruns.eq(mac.underruns), self.frames_sent.eq(mac.frames_sent),
            self.txd.eq(rgmii.txd), self.tx_ctl.eq(rgmii.tx_ctl), self.tx_clk.eq(rgmii.tx_clk),
        ]
        return m
