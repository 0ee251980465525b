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
