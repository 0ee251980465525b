"""The RTL verification suite: every bench and the configurations it runs in.

``make sim`` (``spikeforge sim``) runs all of them and prints a summary; ``make test`` runs
the same cases through pytest (``tests/sim``). Add a core's bench here and both pick it up.
"""

from typing import Any

from spikeforge.firmware.config import (
    DetectorConfig,
    RHDConfig,
    SystemConfig,
    TestSourceConfig,
)

from . import (
    auth_cases,
    compressor_v2_cases,
    compressor_v2_words_cases,
    ethernet_rx_cases,
    ethernet_system_cases,
    ethernet_tx_cases,
    lossless_v2_cases,
)
from .runner import BenchResult, run_bench
from .suite_case import BenchCase

__all__ = ["BenchCase", "CASES", "run_case"]


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


def _conditioner(config: SystemConfig, stimulus: str, sweeps: int, stall: str,
                 state_reads: str = "auto") -> BenchCase:
    from spikeforge.hdl.conditioner import Conditioner

    reads = "" if state_reads == "auto" else f" reads={state_reads}"
    return BenchCase(
        bench="conditioner",
        label=f"{config.channels}ch {config.sample_rate_hz // 1000}kS/s {stimulus} "
              f"stall={stall}{reads}",
        component=lambda: Conditioner(config, state_reads),
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


def _uart_rx(divisor: int, count: int, baud_error: float) -> BenchCase:
    from spikeforge.hdl.uart import UARTReceiver

    return BenchCase(
        bench="uart_rx", label=f"divisor={divisor} bytes={count} sender baud {baud_error:+.1%}",
        component=lambda: UARTReceiver(divisor),
        params={"divisor": divisor, "count": count, "baud_error": baud_error},
    )


def _control(config: SystemConfig, operations: int, baud_error: float, why: str) -> BenchCase:
    from spikeforge.hdl.top import AcquisitionSystem

    return BenchCase(
        bench="control",
        label=f"{config.describe()} host baud {baud_error:+.1%} ({why})",
        component=lambda: AcquisitionSystem(config),
        params={"config": config.to_dict(), "operations": operations,
                "baud_error": baud_error, "seed": operations}, config=config,
    )


def _decimator(config: SystemConfig, factor: int, order: int, stimulus: str, sweeps: int,
               stall: str) -> BenchCase:
    from spikeforge.firmware.decimation import DecimatorConfig
    from spikeforge.hdl.decimator import Decimator

    decimation = DecimatorConfig(factor=factor, order=order)
    return BenchCase(
        bench="decimator",
        label=f"{config.channels}ch R={factor} N={order} {stimulus} stall={stall}",
        component=lambda: Decimator(config, decimation),
        params={"config": config.to_dict(), "decimation": {"factor": factor, "order": order},
                "sweeps": sweeps, "stimulus": stimulus, "stall": stall}, config=config,
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
    # Two channels: the sample two ahead is the same channel (the registered state reads'
    # transparency path), one ahead is not (then, with one channel, both at once).
    _conditioner(_fast(2), "random", 1500, "random"),
    # The iCE40 form (state read in the cycle before each stage, no registered read).
    _conditioner(_fast(1), "saturation", 1500, "random", state_reads="direct"),
    _conditioner(_fast(3), "random", 1000, "random", state_reads="direct"),
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
    # Control path: commands in on uart_rx, replies between the frames on uart_tx.
    _uart_rx(3, 300, 0.02),
    _uart_rx(3, 300, -0.02),
    _uart_rx(4, 200, 0.0),
    _uart_rx(15, 100, -0.02),
    _control(SystemConfig(channels=8, sweeps_per_frame=4, link_buffer_samples=256,
                          detector=DetectorConfig(enabled=True)),
             24, 0.015, "link saturated, 4 cycles/bit"),
    _control(SystemConfig(channels=2, baud=4_000_000, sweeps_per_frame=8,
                          link_buffer_samples=64),
             25, -0.015, "smallest divisor, 3 cycles/bit"),
    # LFP decimator: full-scale random wraps every integrator; rails saturate the output.
    _decimator(_fast(4), 30, 3, "random", 1800, "random"),
    _decimator(_fast(1), 2, 1, "saturation", 3000, "random"),
    _decimator(_fast(3), 1024, 3, "dc-steps", 4200, "none"),
    _decimator(_fast(5), 7, 5, "spikes", 1500, "random"),
    _decimator(_fast(256), 4, 3, "saturation", 24, "random"),
    # The largest channel count (MAX_CHANNELS): a few sweeps, the state memories 1024 deep,
    # every channel bursting at once (the detector drops most events whole and counts them).
    _conditioner(_fast(1024), "spikes", 12, "random"),
    _detector(_fast(1024), "burst", 50, "random", dead_samples=10, expect_drops=True),
) + ethernet_tx_cases.CASES + ethernet_rx_cases.CASES + ethernet_system_cases.CASES \
    + compressor_v2_cases.CASES + compressor_v2_words_cases.CASES + lossless_v2_cases.CASES


def run_case(case: BenchCase) -> BenchResult:
    params = dict(case.params)
    if case.bench == "system":
        case.capture_path.parent.mkdir(parents=True, exist_ok=True)
        params["capture"] = str(case.capture_path)
    return run_bench(case.bench, case.component(), params, label=case.label)


# -- lossless coder (hdl/compressor.py) ---------------------------------------------------------


def _compressor(channels: int, cycles_per_sample: int, stimulus: str, blocks: int, stall: str,
                fifo_entries: int | None = None, **codec: Any) -> BenchCase:
    from spikeforge.firmware.compression import CodecConfig, worst_case_words
    from spikeforge.hdl.compressor import Compressor

    rate = 30_000
    clock = rate * cycles_per_sample
    codec_config = CodecConfig(enabled=True, **codec)
    # SystemConfig requires the framer's buffer to hold two worst-case coded blocks.
    buffer = 2 * max(channels, worst_case_words(channels, codec_config.block_sweeps, codec_config))
    config = SystemConfig(channels=channels, sample_rate_hz=rate, clock_hz=clock, baud=clock,
                          sweeps_per_frame=1, link_buffer_samples=1 << (buffer - 1).bit_length(),
                          codec=codec_config)
    codec_config = config.codec
    return BenchCase(
        bench="compressor",
        label=f"{channels}ch cps={cycles_per_sample} {stimulus} {codec_config.predictor} "
              f"B={codec_config.block_sweeps} esc={codec_config.escape_threshold}"
              f"{' codebook' if codec_config.codebook else ''} stall={stall}"
              f"{f' fifo={fifo_entries} (overflows)' if fifo_entries else ''}",
        component=lambda: Compressor(config, fifo_entries=fifo_entries),
        params={"config": config.to_dict(), "blocks": blocks, "stimulus": stimulus,
                "stall": stall, "expect_overflow": fifo_entries is not None}, config=config,
    )


CASES = CASES + (
    _compressor(4, 24, "white", 6, "random", block_sweeps=16),
    _compressor(1, 2, "spikes", 40, "none", predictor="order1", block_sweeps=5),
    _compressor(8, 40, "gridded", 3, "random", block_sweeps=32, codebook=True),
    _compressor(3, 12, "gridded-off", 12, "random", predictor="order2", block_sweeps=7,
                codebook=True, codebook_bits=10),
    _compressor(5, 20, "alternating", 10, "random", predictor="order3", block_sweeps=9,
                escape_threshold=4),
    _compressor(2, 6, "long-silence", 3, "none", block_sweeps=64, initial_k=0),
    _compressor(16, 40, "ramps", 20, "random", block_sweeps=3, rice_shift=0, select_shift=0),
    _compressor(3, 16, "saturation", 4, "random", predictor="order0", block_sweeps=50,
                escape_threshold=32, rice_shift=7, select_shift=7, initial_k=15),
    _compressor(4, 12, "white", 40, "long", fifo_entries=8, block_sweeps=4),
)


# One channel's samples closer together than the coder's state pipeline (hdl/compressor.py):
# the same channel 1, 2 and 3 cycles apart, so its state comes from the write in flight
# (stage C), from the write of the cycle before (stage D), and from the memory. A system never
# sends one channel faster than every 2 cycles (an idle cycle per sweep); the first case drops
# the bench's idle cycles (``sweep_gap``) so the coder's own limit (none) is tested too.
def _coder_back_to_back(case: BenchCase) -> BenchCase:
    return BenchCase(bench=case.bench, label=f"{case.label} back-to-back",
                     component=case.component, params={**case.params, "sweep_gap": 0},
                     config=case.config)


CASES = CASES + (
    _coder_back_to_back(_compressor(1, 2, "dc-steps", 60, "none", block_sweeps=6)),
    _compressor(1, 2, "spikes", 40, "random", block_sweeps=8, rice_shift=0, select_shift=0),
    _compressor(2, 3, "ramps", 12, "random", block_sweeps=7),
)

# -- bandwidth modes through the whole system (hdl/framer.py, docs/wire-format.md) ---------------


def _system_modes(config: SystemConfig, cycles: int, why: str,
                  mode_writes: list[tuple[int, int]]) -> BenchCase:
    """A system bench that writes BANDWIDTH_MODE over the register bus at the given cycles."""
    case = _system(config, cycles, why)
    params = dict(case.params, mode_writes=[list(w) for w in mode_writes])
    return BenchCase(bench=case.bench, label=case.label, component=case.component,
                     params=params, config=config)


def _coded(**fields: Any) -> SystemConfig:
    from spikeforge.firmware.compression import CodecConfig

    codec = CodecConfig(enabled=True, block_sweeps=fields.pop("block_sweeps"))
    return SystemConfig(codec=codec, **fields)


CASES = CASES + (
    _system_modes(_coded(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                         block_sweeps=16, test_source=TestSourceConfig(noise_shift=3)),
                  50_000, "lossless mode", [(0, 1)]),
    _system_modes(_coded(channels=8, sweeps_per_frame=4, baud=1_000_000,
                         link_buffer_samples=128, block_sweeps=4),
                  60_000, "lossless, link too slow: drops", [(0, 1)]),
    _system_modes(_coded(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                         block_sweeps=16, detector=DetectorConfig(enabled=True),
                         test_source=TestSourceConfig(spike_rate_hz=400.0)),
                  60_000, "mode switch raw, lossless, refused, raw, events",
                  [(12_003, 1), (25_000, 3), (32_011, 0), (45_000, 2)]),
)


# -- channel mask (hdl/channel_mask.py): masked builds, DATA frames carry the enabled channels
CASES = CASES + (
    _system(SystemConfig(channels=8, sweeps_per_frame=8, link_buffer_samples=256,
                         channel_mask=(1, 3, 4, 7), detector=DetectorConfig(enabled=True)),
            80_000, "channel mask 1,3,4,7"),
    _system(SystemConfig(channels=6, sweeps_per_frame=4, link_buffer_samples=64,
                         channel_mask=(5,)),
            60_000, "channel mask: one channel, the last"),
    _system(SystemConfig(channels=40, sample_rate_hz=10_000, baud=12_000_000,
                         sweeps_per_frame=2, link_buffer_samples=256,
                         identity_interval_frames=8, channel_mask=(0, 31, 32, 39)),
            60_000, "channel mask across two words"),
)


def _channel_mask(config: SystemConfig, cycles: int, seed: int, why: str) -> BenchCase:
    from spikeforge.hdl.channel_mask import ChannelMask

    return BenchCase(
        bench="channel_mask", label=f"{config.channels}ch {why}",
        component=lambda: ChannelMask(config),
        params={"config": config.to_dict(), "cycles": cycles, "seed": seed}, config=config,
    )


CASES = CASES + (
    _channel_mask(SystemConfig(channels=1), 3000, 1, "one channel"),
    _channel_mask(SystemConfig(channels=7, channel_mask=(2, 6)), 4000, 2, "reset mask 2,6"),
    _channel_mask(SystemConfig(channels=70, sweeps_per_frame=8, link_buffer_samples=2048,
                               channel_mask=(69,)), 6000, 3, "three words, partial last"),
)


#: Cases `make test` leaves to `make test-slow` (CI runs both, `make sim` runs every case):
#: each is a whole-system build and run whose ground a faster case of the default run also
#: covers — (bench, the "why" its label ends with).
SLOW_CASES: frozenset[tuple[str, str]] = frozenset({
    ("system", "one channel, 1 cycle/bit"),
    ("system", "32 channels"),
    ("system", "slow link, frequent identity"),
    ("system", "many spikes: EVENTS frames"),
    ("system", "lossless mode"),
    ("system", "channel mask: one channel, the last"),
    # drops are also counted by "lossless, link too slow: drops", "events and data drops" and
    # the channel-mask case at 176 % load; the cipher's own drop case by the other two
    # cipher cases' loads
    ("system", "link too slow: drops"),
    ("system_cipher", "cipher, link too slow: drops counted"),
})


#: The v2 coder's symbol-stage, whole-coder and system-coder benches: every case is a
#: Verilator build of its own (~40-80 s each, 40 cases). `make test` keeps one per concern —
#: plain signal, value grid with escapes, sync blocks, the budget going verbatim, the FIFO's
#: overflow, the coder on its own clock — and leaves the others to `make test-slow` (bench,
#: label). Empty blocks and the one-clock N1-like case are also checked on every run by
#: Amaranth's simulator (tests/hdl/test_lossless_v2.py), the grid's escapes in the coder by
#: the coder-clock and verbatim cases.
V2_DEFAULT_CASES: frozenset[tuple[str, str]] = frozenset({
    ("compressor_v2", "symbols 8ch white x64 stall=random gap=0"),
    ("compressor_v2", "symbols 8ch grid-n1 x96 stall=random gap=2 grid=True"),
    ("compressor_v2", "symbols 3ch grid-n1 x48 stall=random gap=0 grid=True,block_sweeps=2,"
                      "sync_blocks=3"),
    ("compressor_v2_coder", "coder 4ch spikes x192 stall=random block_sweeps=32"),
    ("compressor_v2_coder", "coder 5ch bursts x64 stall=random block_sweeps=4,sync_blocks=3"),
    # the system's v2 coder: verbatim, the FIFO's overflow and the coder on its own clock
    # (N1-like); one clock N1-like, empty blocks, sync periods, the word limit and a faster
    # coder clock in test-slow
    ("lossless_v2", "lossless_v2 verbatim 8ch grid-white x32 sweep=8cyc block_sweeps=4,"
                    "sync_blocks=4"),
    ("lossless_v2", "lossless_v2 overflow 8ch grid-n1 x512 sweep=8cyc block_sweeps=4,"
                    "sync_blocks=4"),
    # the coder in its own clock domain at the ULX3S's ratio and 1024 channels' load, with
    # a restart prior and code weights written from sync (the same case without them:
    # test-exhaustive)
    ("lossless_v2", "lossless_v2 prior 8ch grid-n1 x256 sweep=12cyc restart_prior=True,"
                    "code_weights=True,block_sweeps=4,sync_blocks=4 coder=12308ps "
                    "prior=learned weights=learned"),
    # code weights learned, with the prior and sync blocks
    ("compressor_v2", "symbols 6ch grid-n1 x64 stall=random gap=0 grid=True,code_weights=True,"
                      "block_sweeps=4,sync_blocks=2,restart_prior=True prior=learned "
                      "weights=learned"),
    # the restart prior's read at every sync block, an adversarial prior
    ("compressor_v2", "symbols 6ch same-context x64 stall=random gap=0 block_sweeps=4,"
                      "sync_blocks=2,restart_prior=True prior=skewed"),
})
_V2_BENCHES = {bench for bench, _ in V2_DEFAULT_CASES}


def is_slow(case: BenchCase) -> bool:
    """Whether ``case`` is one of :data:`SLOW_CASES`, or a v2 coder case not in
    :data:`V2_DEFAULT_CASES`."""
    if case.bench in _V2_BENCHES:
        return (case.bench, case.label) not in V2_DEFAULT_CASES
    return any(case.bench == bench and case.label.endswith(f"({why})")
               for bench, why in SLOW_CASES)
# -- detector with its snippet ring in single-port iCE40UP SPRAM (behavioural model) ----------


def _detector_spram(config: SystemConfig, stimulus: str, sweeps: int, stall: str,
                    **options: Any) -> BenchCase:
    import dataclasses

    from spikeforge.hdl.detector import Detector
    from spikeforge.sim.models.spram import spram_model

    case = _detector(config, stimulus, sweeps, stall, **options)
    return dataclasses.replace(
        case, label=case.label + " ring=SPRAM",
        component=lambda: Detector(config, ring_storage="spram", spram_factory=spram_model),
        params={**case.params, "ring_storage": "spram"})


CASES = CASES + (
    # 4 free cycles per sweep: the copier reads the ring only there, one word at a time.
    _detector_spram(_fast(8, event_queue=2, event_buffer_words=64), "burst", 600, "random",
                    dead_samples=5),
    _detector_spram(_fast(3), "spikes", 1500, "random", polarity=3, dead_samples=0, pre=3,
                    post=31),
)


# -- codebook loading over the control path (hdl/top.py, docs/compression.md) ------------------


def _bench_codebook(config: SystemConfig) -> dict[str, Any]:
    """A codebook for the test source (which has no ADC grid of its own): two values in
    three on the grid (a reciprocal of 0.75) from a little below channel 0's range, so the
    bench sees values on the grid, between grid values (escaped), and below and above the
    table (clamped, escaped)."""
    import numpy as np

    from spikeforge.firmware.compression import Codebook
    from spikeforge.sim.models.source import source_signal

    bits = config.codec.codebook_bits
    base = int(np.median(source_signal(config, 64).samples[:, 0])) - 8
    multiplier, shift = 0xC000, 16
    values = tuple(base + -(-code * (1 << shift) // multiplier) for code in range(1 << bits))
    return Codebook(values=values, base=base, multiplier=multiplier, shift=shift).to_dict()


def _system_codebook(config: SystemConfig, cycles: int, why: str,
                     mode_writes: list[tuple[int, int]], reload: bool = False) -> BenchCase:
    """A system bench that loads a codebook over the register bus, then writes the modes
    (``reload``: then checks when a new codebook write is taken)."""
    case = _system_modes(config, cycles, why, mode_writes)
    params = dict(case.params, codebook=_bench_codebook(config), codebook_reload=reload)
    return BenchCase(bench=case.bench, label=case.label, component=case.component,
                     params=params, config=config)


def _codebook_config() -> SystemConfig:
    from spikeforge.firmware.compression import CodecConfig

    return SystemConfig(channels=4, sweeps_per_frame=8,
                        link_buffer_samples=256, test_source=TestSourceConfig(noise_shift=5),
                        codec=CodecConfig(enabled=True, block_sweeps=8, codebook=True,
                                          codebook_bits=8))


CASES = CASES + (
    _system_codebook(_codebook_config(), 30_000, "codebook loaded, then lossless",
                     [(5_000, 1)]),
    _system_codebook(_codebook_config(), 25_000,
                     "codebook loaded, lossless, raw: a new table waits for a block",
                     [(5_000, 1), (20_000, 0)], reload=True),
)


# -- LFP: bandwidth mode 3, events + decimated low band (hdl/decimator.py in the system) -------


def _lfp_system(**fields: Any) -> SystemConfig:
    from spikeforge.firmware.decimation import DecimatorConfig

    lfp = DecimatorConfig(factor=fields.pop("factor"), order=fields.pop("order"))
    return SystemConfig(detector=DetectorConfig(enabled=True), lfp=lfp, **fields)


CASES = CASES + (
    # raw, then events+lfp; back to raw in the middle of an LFP frame (the DATA slots that
    # start while it fills are refused and counted), then events+lfp again in the middle of
    # a DATA frame (the LFP slot that starts while it fills is refused and counted); an
    # identity frame is due every 8 DATA slots, so some LFP frames follow one.
    _system_modes(_lfp_system(channels=4, sweeps_per_frame=4, link_buffer_samples=64,
                              factor=4, order=3, channel_mask=(0, 2, 3),
                              identity_interval_frames=8,
                              test_source=TestSourceConfig(spike_rate_hz=400.0)),
                  48_000, "events+lfp: mode switches, LFP frames, drops",
                  [(6_003, 3), (22_000, 0), (32_500, 3)]),
)

# Authenticated control (hdl/siphash.py, hdl/control.py with SystemConfig.control_key).
CASES = CASES + auth_cases.CASES

# Encrypted stream (hdl/chacha20.py, hdl/link_cipher.py; SystemConfig.stream_cipher).
from . import cipher_cases  # noqa: E402

CASES = CASES + cipher_cases.CASES


# -- detector with local exclusion (DetectorConfig.exclusion, docs/detection.md) ---------------


def _detector_exclusion(config: SystemConfig, stimulus: str, sweeps: int, stall: str,
                        **options: Any) -> BenchCase:
    import dataclasses

    det = config.detector
    case = _detector(config, stimulus, sweeps, stall, **options)
    table = "table" if det.exclusion_neighbours else f"+-{det.exclusion_channels}ch"
    return dataclasses.replace(
        case, label=case.label + f" exclusion w={det.exclusion_samples} {table}")


def _two_column_table(channels: int) -> tuple[tuple[int, ...], ...]:
    """SpikeInterface's generated probe: column 0 holds channels 0..n/2-1, 20 um pitch."""
    from spikeforge.firmware.detection import neighbours_within

    rows = channels // 2
    return neighbours_within([(20.0 * (c // rows), 20.0 * (c % rows))
                              for c in range(channels)], 30.0)


CASES = CASES + (
    _detector_exclusion(_fast(6, exclusion=True, exclusion_channels=2), "spikes", 3000,
                        "random", dead_samples=5),
    # Equal peaks on every channel at once (the lowest channel of each neighbourhood wins),
    # saturated scores that tie; channels 0 and 7 at the edges of the index ranges.
    _detector_exclusion(_fast(8, noise_step=16, exclusion=True, exclusion_channels=3),
                        "ties", 1500, "none", dead_samples=0),
    # The two-column probe's table (index neighbours are not all spatial neighbours).
    _detector_exclusion(_fast(16, noise_step=16, exclusion=True, exclusion_samples=4,
                              exclusion_neighbours=_two_column_table(16)),
                        "ties", 1200, "random", dead_samples=2),
    # Every channel bursting at once under a stalling consumer, a 2-deep queue.
    _detector_exclusion(_fast(8, event_queue=2, event_buffer_words=64, exclusion=True,
                              exclusion_samples=0), "burst", 800, "random", dead_samples=5),
    _detector_exclusion(_fast(1, exclusion=True), "spikes", 3000, "random", polarity=3,
                        dead_samples=0, pre=2, post=3),
    _detector_exclusion(_fast(3, neo_shift=6, exclusion=True, exclusion_samples=7),
                        "spikes", 2000, "random", neo=True, dead_samples=0),
    _detector_exclusion(_fast(1024, exclusion=True, exclusion_neighbours=_two_column_table(
        1024)), "burst", 50, "random", dead_samples=10, expect_drops=True),
)


# -- detector with echo suppression and the held noise tracker (DetectorConfig.echo_ratio,
# noise_hold; docs/detection.md) ---------------------------------------------------------------


def _detector_echo(config: SystemConfig, stimulus: str, sweeps: int, stall: str,
                   **options: Any) -> BenchCase:
    import dataclasses

    det = config.detector
    case = (_detector_exclusion if det.exclusion else _detector)(config, stimulus, sweeps,
                                                                 stall, **options)
    echo = f" echo {det.echo_ratio}x<{det.echo_samples}" if det.echo else ""
    hold = " noise hold" if det.noise_hold else ""
    return dataclasses.replace(case, label=case.label + echo + hold)


CASES = CASES + (
    # Pairs at the ratio's edge (one LSB either side, exactly it, saturated scores) and the
    # window's (inside, at it, outside), under a stalling consumer.
    _detector_echo(_fast(4, echo_ratio=6, echo_samples=24), "echoes", 2500, "random",
                   dead_samples=2),
    # With local exclusion (an echo is no candidate), both polarities, dead time 0.
    _detector_echo(_fast(6, exclusion=True, exclusion_channels=1, echo_ratio=3,
                         echo_samples=40), "echoes", 2500, "random", polarity=3,
                   dead_samples=0),
    # The largest ratio and window (the age's widest counter).
    _detector_echo(_fast(3, echo_ratio=16, echo_samples=1023), "echoes", 4000, "random",
                   dead_samples=5),
    # The tracker held while a channel searches, is dead or crosses: spikes of both
    # polarities at the default step, then the benchmark's product detector (exclusion,
    # echo suppression, held tracker) on pairs.
    _detector_echo(_fast(4, noise_hold=True), "spikes", 3000, "random", polarity=3,
                   dead_samples=3, k16=[48] * 4),
    _detector_echo(_fast(6, exclusion=True, exclusion_channels=1, noise_hold=True,
                         echo_ratio=8, echo_samples=40), "echoes", 2500, "random",
                   dead_samples=5, k16=[32] * 6),
)
