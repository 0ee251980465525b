"""What the control path costs on the iCE40: each of its cores synthesised on its own.

``python -m spikeforge.sim.control_cost [--channels N] [--detection] [--codec MODE]
[--predictor NAME]``
runs Yosys' ``synth_ice40 -dsp`` (as the iCEBreaker build does, through
:func:`spikeforge.sim.cost.synthesize_ice40`) on the command decoder, the link arbiter, the
UART receiver and the register bank of the iCEBreaker's reference configuration
(:func:`spikeforge.boards.figures.reference_config`), and prints their LUT4s, flip-flops,
carry cells and block RAMs. A core alone keeps every output bit; in the whole system Yosys
also removes what nothing reads, so the sum is an upper bound of the control path's share
of a board build. docs/boards.md ("Control path") records the figures.
"""

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spikeforge.boards.figures import DETECTION_OVERRIDES, reference_config
from spikeforge.firmware.compression import PREDICTORS
from spikeforge.firmware.config import SystemConfig

__all__ = ["ControlCost", "control_path_costs", "main"]


@dataclass(frozen=True)
class ControlCost:
    core: str
    luts: int
    flip_flops: int
    carries: int
    block_rams: int


def _cores(config: SystemConfig) -> dict[str, Callable[[], Any]]:
    from spikeforge.hdl.control import CommandDecoder, LinkArbiter
    from spikeforge.hdl.registers import RegisterBank
    from spikeforge.hdl.uart import UARTReceiver

    return {
        "CommandDecoder": lambda: CommandDecoder(config),
        "LinkArbiter": LinkArbiter,
        "UARTReceiver": lambda: UARTReceiver(config.uart_divisor),
        "RegisterBank": lambda: RegisterBank(config),
    }


def _other_cores(config: SystemConfig) -> dict[str, Callable[[], Any]]:
    """The rest of the system, to compare with (``--other-cores``)."""
    from spikeforge.hdl.channel_mask import ChannelMask
    from spikeforge.hdl.framer import Framer
    from spikeforge.hdl.source import TestSource

    cores: dict[str, Callable[[], Any]] = {"TestSource": lambda: TestSource(config),
                                           "Framer": lambda: Framer(config),
                                           "ChannelMask": lambda: ChannelMask(config)}
    if config.detector.enabled:
        from spikeforge.hdl.conditioner import Conditioner
        from spikeforge.hdl.detector import Detector

        cores["Conditioner"] = lambda: Conditioner(config)
        cores["Detector"] = lambda: Detector(config)
    if config.codec.enabled:     # the lossless coder (with its codebook, if built with one)
        from spikeforge.hdl.compressor import Compressor

        cores["Compressor"] = lambda: Compressor(config)
    return cores


def control_path_costs(config: SystemConfig, cores: tuple[str, ...] | None = None, *,
                       other_cores: bool = False) -> list[ControlCost]:
    """Synthesise each control-path core of ``config`` (all, or those named in ``cores``),
    and with ``other_cores`` the system's other cores too."""
    from spikeforge.sim.cost import synthesize_ice40

    makers = {**_cores(config), **(_other_cores(config) if other_cores else {})}
    results = []
    for name, make in makers.items():
        if cores is not None and name not in cores:
            continue
        cells = synthesize_ice40(make(), design=name, channels=config.channels).cells
        results.append(ControlCost(
            core=name,
            luts=cells.get("SB_LUT4", 0),
            flip_flops=sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
            carries=cells.get("SB_CARRY", 0),
            block_rams=cells.get("SB_RAM40_4K", 0),
        ))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--detection", action="store_true",
                        help="the detection reference configuration (more registers)")
    parser.add_argument("--other-cores", action="store_true",
                        help="also the system's other cores (source, framer, conditioner, "
                             "detector), for comparison; not in the total")
    parser.add_argument("--codec", choices=("off", "lossless", "codebook"), default="off",
                        help="with the lossless coder (BANDWIDTH_MODE registers), and with "
                             "its codebook (CODEBOOK_* registers)")
    parser.add_argument("--predictor", choices=tuple(PREDICTORS), default="adaptive",
                        help="the coder's predictor (with --codec)")
    args = parser.parse_args(argv)
    overrides = dict(DETECTION_OVERRIDES if args.detection else {})
    if args.codec != "off":
        # Blocks of 8 sweeps, so the reference link buffer holds two worst-case blocks.
        overrides["codec"] = {"enabled": True, "codebook": args.codec == "codebook",
                              "block_sweeps": 8, "predictor": args.predictor}
    config = reference_config("icebreaker", args.channels, overrides or None)
    costs = control_path_costs(config, other_cores=args.other_cores)
    control = [c for c in costs if c.core in _cores(config)]
    print("| core | LUT4 | flip-flops | SB_CARRY | block RAM |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for cost in costs:
        print(f"| {cost.core} | {cost.luts} | {cost.flip_flops} | {cost.carries} | "
              f"{cost.block_rams} |")
        if cost is control[-1]:
            print(f"| control path | {sum(c.luts for c in control)} | "
                  f"{sum(c.flip_flops for c in control)} | {sum(c.carries for c in control)} "
                  f"| {sum(c.block_rams for c in control)} |")


if __name__ == "__main__":
    main()
