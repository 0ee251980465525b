"""The Ethernet receive path in one component: RGMII pins to replies and command bytes."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.ethernet import EthernetConfig

from .ip_rx import FrameDispatcher
from .layouts import FrameByteLayout
from .mac_rx import MACReceiver
from .rgmii_rx import RGMIIReceiver

__all__ = ["EthernetReceiver", "RECEIVER_COUNTERS"]

_DEFAULT_CONFIG = EthernetConfig()    # the build's defaults

RECEIVER_COUNTERS = ("frames_ok", "fcs_errors", "runts", "giants", "overflows", "dropped_mac",
                     "dropped_ip", "dropped_port", "dropped_other", "arp_answered",
                     "ping_answered", "datagrams")


class EthernetReceiver(wiring.Component):
    """:class:`RGMIIReceiver` -> :class:`MACReceiver` -> :class:`FrameDispatcher`, all in
    ``sync`` (the 125 MHz receive clock's domain once renamed).

    Ports: the RGMII pins (``rxd``, ``rx_ctl``; simulation only, ``pins`` otherwise), the
    dispatcher's ``board_mac``/``board_ip``/``control_port``, ``reply``, ``command``,
    ``sender_*``, and every counter of the MAC and the dispatcher (:data:`RECEIVER_COUNTERS`).
    """

    def __init__(self, config: EthernetConfig = _DEFAULT_CONFIG, pins=None,
                 buffer_bytes: int = 4096):
        self._config = config
        self._pins = pins
        self._buffer_bytes = buffer_bytes
        members = {
            "board_mac": In(48, init=config.mac),
            "board_ip": In(32, init=config.ip),
            "control_port": In(16, init=config.control_port),
            "reply": Out(stream.Signature(FrameByteLayout)),
            "command": Out(stream.Signature(8)),
            "sender_mac": Out(48), "sender_ip": Out(32), "sender_port": Out(16),
            "sender_valid": Out(1),
            **{name: Out(32) for name in RECEIVER_COUNTERS},
        }
        if pins is None:
            members |= {"rxd": In(4), "rx_ctl": In(1)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.rgmii = rgmii = RGMIIReceiver(self._pins)
        m.submodules.mac = mac = MACReceiver(self._buffer_bytes)
        m.submodules.dispatcher = dispatcher = FrameDispatcher(self._config)
        if self._pins is None:
            m.d.comb += [rgmii.rxd.eq(self.rxd), rgmii.rx_ctl.eq(self.rx_ctl)]
        m.d.comb += [
            mac.rx_data.eq(rgmii.rx_data), mac.rx_dv.eq(rgmii.rx_dv), mac.rx_er.eq(rgmii.rx_er),
            dispatcher.board_mac.eq(self.board_mac),
            dispatcher.board_ip.eq(self.board_ip),
            dispatcher.control_port.eq(self.control_port),
        ]
        wiring.connect(m, mac.o, dispatcher.i)
        wiring.connect(m, dispatcher.reply, wiring.flipped(self.reply))
        wiring.connect(m, dispatcher.command, wiring.flipped(self.command))
        for name in ("sender_mac", "sender_ip", "sender_port", "sender_valid"):
            m.d.comb += getattr(self, name).eq(getattr(dispatcher, name))
        for name in RECEIVER_COUNTERS:
            source = mac if hasattr(mac, name) else dispatcher
            m.d.comb += getattr(self, name).eq(getattr(source, name))
        return m
