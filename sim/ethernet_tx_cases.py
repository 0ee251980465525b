"""The Ethernet TX benches' cases for `make sim` (sim.suite appends them to its CASES)."""

from .suite_case import BenchCase

__all__ = ["CASES"]


def _ethernet_tx(seed: int, frames: int, stall: float, extra_frames: int,
                 fifo_depth: int = 4096) -> BenchCase:
    def component():
        from spikeforge.hdl.ethernet.transmitter import EthernetTransmitter

        return EthernetTransmitter(extra_inputs=1, fifo_depth=fifo_depth)

    return BenchCase(
        bench="ethernet_tx",
        label=f"seed={seed} frames={frames} input stalls {stall:.0%} arp={extra_frames} "
              f"fifo={fifo_depth}",
        component=component,
        params={"seed": seed, "frames": frames, "stall": stall, "extra_frames": extra_frames},
    )


def _ethernet_tx_mac(seed: int, frames: int, underrun_chance: float) -> BenchCase:
    def component():
        from spikeforge.hdl.ethernet.transmitter import MACOnRGMII

        return MACOnRGMII()

    return BenchCase(
        bench="ethernet_tx_mac",
        label=f"seed={seed} frames={frames} underruns {underrun_chance:.0%}",
        component=component,
        params={"seed": seed, "frames": frames, "underrun_chance": underrun_chance},
    )


CASES: tuple[BenchCase, ...] = (
    # Input at full rate (the builder's own header time back-pressures it).
    _ethernet_tx(1, 24, 0.0, 6),
    # Input stalling a third of the bytes, some stalls long: the FIFO keeps frames whole.
    _ethernet_tx(2, 24, 0.35, 10),
    # The smallest FIFO that holds one whole maximum frame (no double buffering).
    _ethernet_tx(3, 16, 0.1, 4, fifo_depth=2048),
    # The MAC fed directly: exact frames, and underruns marked bad and counted.
    _ethernet_tx_mac(4, 60, 0.3),
)
