"""cocotb driver of an RGMII PHY's receive pins: frames as nibbles on both clock edges.

Imported only inside cocotb benches (it needs a running simulator).
"""

from collections.abc import Iterable

from cocotb.triggers import FallingEdge, Timer

from spikeforge.firmware.ethernet import INTER_FRAME_GAP_BYTES, PREAMBLE_SFD

from .drivers import CLOCK_PERIOD_NS
from .models.ethernet_rx import RxFrame

__all__ = ["RGMIIDriver"]


class RGMIIDriver:
    """Drives ``rxd[3:0]`` and ``rx_ctl`` as a PHY does at 1000 Mb/s.

    Each byte: the low nibble and ``rx_dv`` are set a quarter period before the rising edge,
    the high nibble and ``rx_dv XOR rx_er`` a quarter period before the falling edge, so
    both are centred on the edge that samples them (the delay a PHY's internal RX delay or
    the board's trace adds). Between frames the pins idle at 0.
    """

    def __init__(self, dut, period_ns: float = CLOCK_PERIOD_NS):
        self.clk = dut.clk
        self.rxd = dut.rxd
        self.ctl = dut.rx_ctl
        self.half_ns = period_ns / 2
        self.rxd.value = 0
        self.ctl.value = 0
        self.bytes_sent = 0

    async def send(self, frames: Iterable[tuple[RxFrame, int]]) -> None:
        """Send each ``(frame, gap)``: preamble, SFD, the frame's bytes (its ``rx_error``
        marks its middle byte), then ``gap`` idle byte times (at least the 12 of the IFG)."""
        await FallingEdge(self.clk)
        await Timer(self.half_ns / 2, unit="ns")          # a quarter before the rising edge
        for frame, gap in frames:
            symbols = PREAMBLE_SFD + frame.data
            error_at = len(PREAMBLE_SFD) + len(frame.data) // 2 if frame.rx_error else -1
            for position, byte in enumerate(symbols):
                self.rxd.value = byte & 0xF
                self.ctl.value = 1
                await Timer(self.half_ns, unit="ns")
                self.rxd.value = byte >> 4
                self.ctl.value = 0 if position == error_at else 1
                await Timer(self.half_ns, unit="ns")
            self.bytes_sent += len(symbols)
            self.rxd.value = 0
            self.ctl.value = 0
            await Timer(2 * self.half_ns * max(gap, INTER_FRAME_GAP_BYTES), unit="ns")
