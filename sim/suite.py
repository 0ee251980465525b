"""The RTL verification suite: every bench and the configurations it runs in.

``make sim`` (``spikeforge sim``) runs all of them and prints a summary; ``make test`` runs
the same cases through pytest (``tests/sim``). Add a core's bench here and both pick it up.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeforge.firmware.config import (
    DetectorConfig,
    RHDConfig,
    SystemConfig,
    TestSourceConfig,
)

from .runner import BUILD_ROOT, BenchResult, run_bench

__all__ = ["BenchCase", "CASES", "run_case"]


@dataclass(frozen=True)
class BenchCase:
    bench: str                         #: module in spikeforge.sim.benches
    label: str                         #: the configuration, as the summary shows it
    component: Callable[[], Any]       #: builds the Amaranth design under test
    params: dict[str, Any] = field(default_factory=dict)
    config: SystemConfig | None = None

    @property
    def case_id(self) -> str:
        return f"{self.bench}[{self.label}]"

    @property
    def capture_path(self) -> Path:
        safe = "".join(c if c.isalnum() else "_" for c in self.label)
        return (BUILD_ROOT / "captures" / f"{self.bench}-{safe}.bin").resolve()


def _system(config: SystemConfig, cycles: int, why: str,
            cable_delays: list[int] | None = None) -> BenchCase:
    from spikeforge.hdl.top import AcquisitionSystem

    params: dict[str, Any] = {"config": config.to_dict(), "cycles": cycles}
    if cable_delays is not None:
        params["cable_delays"] = cable_delays
    return BenchCase(
        bench="system", label=f"{config.describe()} ({why})",
        component=lambda: AcquisitionSystem(config), params=params, config=config,
    )


def _source(config: SystemConfig, sweeps: int, stall: str) -> BenchCase:
    from spikeforge.hdl.source import TestSource

    return BenchCase(
        bench="source",
        label=f"{config.channels}ch cps={config.cycles_per_sample} noise>>"
              f"{config.test_source.noise_shift} sink={stall}",
        component=lambda: TestSource(config),
        params={"config": config.to_dict(), "sweeps": sweeps, "stall": stall}, config=config,
    )


def _uart(divisor: int, count: int) -> BenchCase:
    from spikeforge.hdl.uart import UARTTransmitter

    return BenchCase(
        bench="uart", label=f"divisor={divisor} bytes={count}",
        component=lambda: UARTTransmitter(divisor),
        params={"divisor": divisor, "count": count},
    )


def _rhd(config: SystemConfig, cable_delays: list[int], sweeps: int, why: str,
         stall: str = "always-ready") -> BenchCase:
    from spikeforge.hdl.rhd2000 import RHDFrontEnd

    return BenchCase(
        bench="rhd2000",
        label=f"{'+'.join(config.rhd.chips)} cable={','.join(map(str, cable_delays))} "
              f"sclk/{2 * config.rhd.sclk_half_period_cycles} {config.channels}ch sink={stall} "
              f"({why})",
        component=lambda: RHDFrontEnd(config),
        params={"config": config.to_dict(), "cable_delays": cable_delays, "sweeps": sweeps,
                "stall": stall},
        config=config,
    )


def _rhd_config(chips: tuple[str, ...], masks: tuple[int, ...] | None, rate: int,
                **rhd: Any) -> SystemConfig:
    front_end = RHDConfig(chips=chips, amplifier_masks=masks,
                          miso_delay_cycles=(0,) * len(chips), **rhd)
    return SystemConfig(source="rhd", channels=front_end.channels, sample_rate_hz=rate,
                        sweeps_per_frame=4, link_buffer_samples=1024, rhd=front_end)


def _registers(config: SystemConfig, operations: int) -> BenchCase:
    from spikeforge.hdl.registers import RegisterBank

    return BenchCase(
        bench="registers", label=f"{config.channels}ch, {operations} random bus cycles",
        component=lambda: RegisterBank(config),
        params={"config": config.to_dict(), "operations": operations}, config=config,
    )


def _fast(channels: int, rate: int = 30_000, **detector) -> SystemConfig:
    """A configuration with few idle cycles per sweep, so benches cover many sweeps."""
    clock = rate * max(10, channels + 4)
    return SystemConfig(channels=channels, sample_rate_hz=rate, clock_hz=clock, baud=clock,
                        sweeps_per_frame=1, link_buffer_samples=max(2, 1 << (
                            2 * channels - 1).bit_length()),
                        detector=DetectorConfig(**detector))


def _conditioner(config: SystemConfig, stimulus: str, sweeps: int, stall: str) -> BenchCase:
    from spikeforge.hdl.conditioner import Conditioner

    return BenchCase(
        bench="conditioner",
        label=f"{config.channels}ch {config.sample_rate_hz // 1000}kS/s {stimulus} "
              f"stall={stall}",
        component=lambda: Conditioner(config),
        params={"config": config.to_dict(), "sweeps": sweeps, "stimulus": stimulus,
                "stall": stall}, config=config,
    )


def _detector(config: SystemConfig, stimulus: str, sweeps: int, stall: str, *,
              polarity: int = 1, dead_samples: int = 30, pre: int = 8, post: int = 16,
              k16: list[int] | None = None, expect_drops: bool = False,
              neo: bool = False) -> BenchCase:
    from spikeforge.hdl.detector import Detector

    k16 = k16 if k16 is not None else [80] * config.channels
    return BenchCase(
        bench="detector",
        label=f"{config.channels}ch {stimulus} {'NEO ' if neo else ''}pol={polarity} "
              f"dead={dead_samples} "
              f"snip={pre}+1+{post} q={config.detector.event_queue} stall={stall}",
        component=lambda: Detector(config),
        params={"config": config.to_dict(), "sweeps": sweeps, "stimulus": stimulus,
                "stall": stall, "polarity": polarity, "dead_samples": dead_samples,
                "snippet_pre": pre, "snippet_post": post, "k16": k16,
                "expect_drops": expect_drops, "neo": neo}, config=config,
    )


CASES: tuple[BenchCase, ...] = (
    _source(SystemConfig(channels=5, sample_rate_hz=1_000_000, clock_hz=12_000_000,
                         test_source=TestSourceConfig(spike_rate_hz=20_000)),
            4000, "always-ready"),
    _source(SystemConfig(channels=7, sample_rate_hz=1_000_000, clock_hz=12_000_000,
                         test_source=TestSourceConfig(seed=0xDEADBEEF, noise_shift=3,
                                                      spike_rate_hz=30_000)),
            4000, "random-stalls"),
    _registers(SystemConfig(channels=8), 3000),
    _registers(SystemConfig(source="rhd", channels=32, sample_rate_hz=8000), 3000),
    _uart(1, 400),
    _uart(4, 400),
    _uart(13, 150),
    _system(SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256),
            150_000, "link just fast enough"),
    _system(SystemConfig(channels=1, baud=12_000_000, sweeps_per_frame=16,
                         link_buffer_samples=64, detector=DetectorConfig(enabled=True)),
            100_000, "one channel, 1 cycle/bit"),
    _system(SystemConfig(channels=32, sample_rate_hz=5_000, baud=12_000_000,
                         sweeps_per_frame=2, link_buffer_samples=256,
                         identity_interval_frames=16, detector=DetectorConfig(enabled=True)),
            150_000, "32 channels"),
    _system(SystemConfig(channels=8, sweeps_per_frame=8, link_buffer_samples=256,
                         detector=DetectorConfig(enabled=True)),
            150_000, "link too slow: drops"),
    _system(SystemConfig(channels=3, sample_rate_hz=20_000, baud=1_000_000, sweeps_per_frame=5,
                         link_buffer_samples=64, identity_interval_frames=7),
            200_000, "slow link, frequent identity"),
    _rhd(_rhd_config(("RHD2132",), None, 8_000), [2], 12, "all 32 amplifiers"),
    _rhd(_rhd_config(("RHD2164",), (0xF0000000_0000000F | 1 << 40,), 20_000), [3], 30,
         "DDR MISO"),
    _rhd(_rhd_config(("RHD2216",), (0xA5A5,), 10_000, sclk_half_period_cycles=2,
                     twos_complement=True), [5], 30, "slow SCLK, two's complement"),
    _rhd(_rhd_config(("RHD2132", "RHD2164", "RHD2216", "RHD2132"),
                     (0x8000_0001, 0x1_0000_0003, 0x0300, 0x00F0), 20_000),
         [0, 1, 4, 7], 30, "4 mixed chips", stall="random-stalls"),
    _system(SystemConfig(source="rhd", channels=6, sample_rate_hz=20_000, baud=12_000_000,
                         sweeps_per_frame=8, link_buffer_samples=256,
                         rhd=RHDConfig(chips=("RHD2164", "RHD2132"),
                                       amplifier_masks=(1 << 63 | 0b101, 0b111 << 29),
                                       miso_delay_cycles=(2, 3))),
            60_000, "RHD front-end, chips on the pins", cable_delays=[2, 2]),
    _system(SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                         baud=6_000_000, test_source=TestSourceConfig(spike_rate_hz=400.0),
                         detector=DetectorConfig(enabled=True)),
            150_000, "many spikes: EVENTS frames"),
    _system(SystemConfig(channels=6, sweeps_per_frame=4, link_buffer_samples=64,
                         baud=1_000_000,
                         test_source=TestSourceConfig(spike_rate_hz=900.0),
                         detector=DetectorConfig(enabled=True, event_queue=2,
                                                 event_buffer_words=128,
                                                 dead_samples=2, threshold_k=3.0)),
            150_000, "events and data drops"),
    _conditioner(_fast(4), "spikes", 3000, "random"),
    _conditioner(_fast(1), "saturation", 4000, "random"),
    _conditioner(_fast(1, 20_000), "dc-steps", 4000, "none"),
    _conditioner(_fast(3), "silence", 1500, "none"),
    _conditioner(_fast(7, dc_shift=3, highpass_hz=1000.0, lowpass_hz=3000.0), "random",
                 1500, "random"),
    _conditioner(_fast(256), "spikes", 60, "random"),
    _detector(_fast(4), "spikes", 3000, "none"),
    _detector(_fast(1, noise_step=16), "spikes", 6000, "random", polarity=3, dead_samples=0,
              pre=3, post=40, k16=[56]),
    _detector(_fast(8, event_queue=2, event_buffer_words=64), "burst", 800, "random",
              polarity=1, dead_samples=5, k16=[48, 64, 80, 96, 112, 40, 72, 255],
              expect_drops=True),
    _detector(_fast(5, align_samples=2), "saturation", 1500, "random", polarity=2,
              dead_samples=3, pre=0, post=0, k16=[16, 32, 48, 0, 255]),
    _detector(_fast(3), "silence", 800, "none", polarity=3),
    _detector(_fast(2), "dc-steps", 2000, "random", polarity=3, dead_samples=100),
    _detector(_fast(256), "burst", 100, "random", dead_samples=10, expect_drops=True),
    _detector(_fast(4, neo_shift=6), "spikes", 3000, "random", neo=True, dead_samples=3),
    _detector(_fast(2, neo_shift=0), "saturation", 1500, "none", neo=True, polarity=3,
              k16=[40, 200]),
    _detector(_fast(3), "random", 1500, "random", neo=True, dead_samples=0, pre=2, post=2),
    # The largest channel count (MAX_CHANNELS): a few sweeps, the state memories 1024 deep,
    # every channel bursting at once (the detector drops most events whole and counts them).
    _conditioner(_fast(1024), "spikes", 12, "random"),
    _detector(_fast(1024), "burst", 50, "random", dead_samples=10, expect_drops=True),
)


def run_case(case: BenchCase) -> BenchResult:
    params = dict(case.params)
    if case.bench == "system":
        case.capture_path.parent.mkdir(parents=True, exist_ok=True)
        params["capture"] = str(case.capture_path)
    return run_bench(case.bench, case.component(), params, label=case.label)
