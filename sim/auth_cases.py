"""The authenticated-control benches' cases for `make sim` (sim.suite appends them to its
CASES): the SipHash-2-4 core alone, and the control path of keyed builds."""

from typing import Any

from spikeforge.firmware.config import DetectorConfig, SystemConfig

from .suite_case import BenchCase

__all__ = ["CASES"]

#: The benches' key (a test key: never a device's).
BENCH_KEY = "000102030405060708090a0b0c0d0e0f"


def _siphash(messages: int, stall: str, seed: int) -> BenchCase:
    from spikeforge.hdl.siphash import SipHash

    return BenchCase(bench="auth_siphash",
                     label=f"{messages} random keys+messages, stall={stall}",
                     component=SipHash,
                     params={"messages": messages, "stall": stall, "seed": seed})


def _control(config: SystemConfig, operations: int, baud_error: float, why: str) -> BenchCase:
    from spikeforge.hdl.top import AcquisitionSystem

    params: dict[str, Any] = {"config": config.to_dict(), "operations": operations,
                              "baud_error": baud_error, "seed": operations}
    return BenchCase(bench="auth_control",
                     label=f"{config.describe()} host baud {baud_error:+.1%} ({why})",
                     component=lambda: AcquisitionSystem(config), params=params,
                     config=config)


def _ethernet(config: SystemConfig, why: str) -> BenchCase:
    from spikeforge.hdl.top import AcquisitionSystem

    return BenchCase(bench="auth_ethernet", label=f"{config.describe()} ({why})",
                     component=lambda: AcquisitionSystem(config),
                     params={"config": config.to_dict()}, config=config)


CASES: tuple[BenchCase, ...] = (
    _siphash(150, "none", 1),
    _siphash(150, "some", 2),
    _control(SystemConfig(channels=2, baud=4_000_000, sweeps_per_frame=8,
                          link_buffer_samples=64, control_key=BENCH_KEY),
             30, -0.015, "keyed, smallest divisor, 3 cycles/bit"),
    # Over Ethernet: plain, forged and replayed commands from others never name the host
    # (the data's destination); the first signed one does, and then nothing moves it.
    _ethernet(SystemConfig(link="ethernet", channels=8, sweeps_per_frame=8,
                           link_buffer_samples=256, identity_interval_frames=4,
                           baud=12_000_000, detector=DetectorConfig(enabled=False),
                           control_key=BENCH_KEY),
              "keyed ethernet: only a verified command names the host"),
)


def _epoch(label: str, image: str, *, region_bytes: int = 64, offset: int | None = None,
           divider: int = 2, poll_limit: int = 16, seed: int = 1, **extra: Any) -> BenchCase:
    """A flash epoch store case (sim/benches/auth_epoch.py): the core on a SPI NOR part
    model, H and the region compared with the golden model after the scan and every raise."""
    from spikeforge.firmware.epoch_store import REGION_OFFSET
    from spikeforge.hdl.epoch_store import EpochStore

    core = {"offset": REGION_OFFSET if offset is None else offset,
            "region_bytes": region_bytes, "divider": divider, "poll_limit": poll_limit,
            "wake_cycles": 64, "deselect_cycles": 4}
    return BenchCase(bench="auth_epoch", label=label, component=lambda: EpochStore(**core),
                     params={**core, "image": image, "seed": seed, **extra})


CASES = CASES + (
    _epoch("random H and raises, 64-byte region", "random", images=8, raises=10, seed=1,
           busy_polls=3),
    _epoch("random H and raises, region across a flash page, SCK clk/6", "random",
           offset=0x3F0000 + 0xE0, divider=3, images=6, raises=10, seed=2, busy_polls=0),
    _epoch("erased region: H 0, raises from the first bit to the limit", "erased",
           to=[1, 1, 0, 9, 16, 17, 200, 512, 513, 100_000], after_reset=[512, 513]),
    _epoch("exhausted region (all 0x00): H is the limit, raises above it fail", "exhausted",
           to=[512, 1, 513, 131_071], after_reset=[513, 512]),
    _epoch("H one below a 256-byte page boundary, raises across it", "high=2047",
           region_bytes=512, to=[2048, 2049, 2056, 2057, 2303, 2305, 4095, 4096]),
    _epoch("H on a page boundary and on a byte boundary", "high=2048", region_bytes=512,
           to=[2048, 2056, 2064, 2065, 2072]),
    _epoch("non-canonical byte 0b10111111 ends the scan, raises AND into it",
           "noncanonical=5,0xBF", to=[41, 42, 44, 48, 60]),
    _epoch("non-canonical byte 0b00100000 (stray bits after it): a reset reads a higher H",
           "noncanonical=3,0x20", seed=3, to=[27, 29, 30]),
    _epoch("write-protected part: the verify fails, failed is sticky", "high=100",
           write_protected=True, to=[101, 100, 120, 99, 513], after_reset=[101]),
    _epoch("stuck-busy part: the poll limit fails the raise; after a power cycle it works",
           "high=100",
           stuck_busy=True, poll_limit=8, to=[117, 101, 100], after_reset=[101, 117]),
    _epoch("full 8192-byte region, H near the end, raised to the limit and above", "high=65531",
           region_bytes=8192, poll_limit=64, to=[65532, 65536, 65537, 131_071, 65536],
           after_reset=[65536, 65537]),
)
