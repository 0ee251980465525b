"""The Ethernet system bench's cases for `make sim` (sim.suite appends them to its CASES)."""

from spikeforge.firmware.config import DetectorConfig, SystemConfig

from .suite_case import BenchCase

__all__ = ["CASES"]


def _system_ethernet(config: SystemConfig, frame_periods: int, why: str) -> BenchCase:
    def component():
        from spikeforge.hdl.top import AcquisitionSystem

        return AcquisitionSystem(config)

    return BenchCase(
        bench="system_ethernet", label=f"{config.describe()} ({why})", component=component,
        params={"config": config.to_dict(), "frame_periods": frame_periods}, config=config,
    )


CASES: tuple[BenchCase, ...] = (
    # ARP, ping, a filtered and a broken frame, a command; then data datagrams to the
    # learned host, decoded by the host's decoder. No detector: frame order is then the
    # model's whatever the link's speed. baud = clock: the model's link takes a byte every
    # 10 cycles, like the real one never drops a frame.
    _system_ethernet(SystemConfig(link="ethernet", channels=8, sweeps_per_frame=8,
                                  link_buffer_samples=256, identity_interval_frames=4,
                                  baud=12_000_000, detector=DetectorConfig(enabled=False)),
                     frame_periods=8, why="ethernet: arp, ping, command, data"),
)
