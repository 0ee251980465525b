"""An RGMII PHY model for cocotb benches: the transmit lines, sampled on both clock edges.

Imported only inside cocotb benches (it needs a running simulator).
"""

import zlib
from dataclasses import dataclass

import cocotb
from cocotb.triggers import RisingEdge, Timer

from spikeforge.firmware.ethernet import FCS_BYTES, MIN_FRAME_BYTES, PREAMBLE_SFD

__all__ = ["LineFrame", "RGMIIMonitor"]


@dataclass
class LineFrame:
    """One burst of ``tx_en`` on the lines, as the PHY saw it."""

    start_ns: float                    #: the rising edge of its first byte
    end_ns: float                      #: the rising edge of its last byte
    line: bytes                        #: every byte, preamble to FCS
    error: bool                        #: some byte had tx_er (tx_ctl differed between edges)

    @property
    def problems(self) -> list[str]:
        """What is wrong with the frame as a receiver would judge it (empty: a good frame)."""
        found = []
        if self.error:
            found.append("tx_er asserted")
        if self.line[:len(PREAMBLE_SFD)] != PREAMBLE_SFD:
            found.append(f"preamble/SFD {self.line[:8].hex()}")
        body = self.body
        if len(body) < MIN_FRAME_BYTES:
            found.append(f"runt of {len(body)} bytes")
        fcs = self.line[-FCS_BYTES:]
        if int.from_bytes(fcs, "little") != zlib.crc32(body):
            found.append("bad FCS")
        return found

    @property
    def body(self) -> bytes:
        """Destination MAC to the end of the pad, without preamble, SFD and FCS."""
        return self.line[len(PREAMBLE_SFD):-FCS_BYTES]


class RGMIIMonitor:
    """Samples ``txd``/``tx_ctl`` a quarter period after each edge of ``tx_clk``.

    That is where a PHY with a 90 degree transmit clock delay samples. The nibble after the
    rising edge is a byte's low half, the one after the falling edge its high half;
    ``tx_ctl`` is ``tx_en`` after the rising and ``tx_en XOR tx_er`` after the falling
    edge. A frame is a run of cycles with ``tx_en``; each is kept as a :class:`LineFrame`.
    Idle time costs one trigger per frame (the monitor waits for ``tx_ctl`` to rise).
    """

    def __init__(self, tx_clk, txd, tx_ctl, period_ns: float):
        self.tx_clk = tx_clk
        self.txd = txd
        self.tx_ctl = tx_ctl
        self.period_ns = period_ns
        self.frames: list[LineFrame] = []
        self.glitches: list[float] = []     # tx_ctl high on a falling edge only
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        from cocotb.utils import get_sim_time

        half = self.period_ns / 2
        quarter = self.period_ns / 4
        while True:
            await RisingEdge(self.tx_ctl)
            if not int(self.tx_clk.value):
                # tx_ctl rose after a falling edge: an error without enable (not sent here).
                self.glitches.append(get_sim_time("ns"))
                continue
            await Timer(quarter, unit="ns")
            start = get_sim_time("ns") - quarter
            data = bytearray()
            error = False
            while True:
                low, enable = int(self.txd.value), int(self.tx_ctl.value)
                await Timer(half, unit="ns")
                high, enable_xor_error = int(self.txd.value), int(self.tx_ctl.value)
                if not enable:
                    break
                data.append(low | high << 4)
                error |= enable != enable_xor_error
                await Timer(half, unit="ns")
            end = get_sim_time("ns") - quarter - half - self.period_ns
            self.frames.append(LineFrame(start, end, bytes(data), error))
