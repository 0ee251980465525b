"""Build a board's bitstream, cached by content, and check that it fits and meets timing.

A build is keyed by a digest of

* Amaranth's build plan for the design (RTLIL, constraints, scripts), generated with
  ``emit_src=False`` so that no source path is in it and a moved checkout still hits;
* the configuration (``SystemConfig.to_dict()``) and the board name;
* the toolchain's identity (YoWASP wheel versions, or system tool versions).

The bitstream and nextpnr's machine-readable report live in
``<build_dir>/<board>/<digest>/``. A manifest, written last and atomically, records the
SHA-256 of both; an entry whose manifest is missing or does not match its files (an
interrupted or damaged build) is a miss and is rebuilt, never used.
"""

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from spikeforge.firmware.config import SystemConfig
from spikeforge.folder_lock import locked_folder

from .errors import DoesNotFit, GatewareError, TimingNotMet, ToolFailed
from .registry import Board, get_board
from .toolchain import Toolchain, select_toolchain

__all__ = [
    "Utilization", "ClockFmax", "NextpnrReport", "BuildResult", "PreparedBuild",
    "parse_report", "parse_log_utilization", "prepare", "build",
]

logger = logging.getLogger(__name__)

#: Bump when the cache layout or what a cache entry means changes.
CACHE_FORMAT = 1
DESIGN_NAME = "top"
REPORT_FILE = "report.json"
MANIFEST_FILE = "spikeforge-build.json"
LOG_FILE = "build.log"
#: Hex digits of the digest used as the cache folder name (the manifest holds all of it).
_DIR_DIGITS = 16
#: ``--timing-allow-fail``: let nextpnr finish and write its report when timing fails, so
#: that the failure is reported here with the figures, not as a bare tool error.
NEXTPNR_OPTS = f"--report {REPORT_FILE} --timing-allow-fail"
#: Extra Yosys synthesis options per FPGA family. ``-dsp``: map multipliers (the detector's
#: threshold and NEO products) to the iCE40UP's SB_MAC16 blocks instead of logic cells.
SYNTH_OPTS = {"ice40": "-dsp"}


class Utilization(NamedTuple):
    """How much of one FPGA resource the design uses."""

    used: int
    available: int

    @property
    def fraction(self) -> float:
        return self.used / self.available if self.available else float(self.used > 0)


@dataclass(frozen=True)
class ClockFmax:
    """Fastest frequency the placed design can run at, against its clock's constraint."""

    achieved_mhz: float
    required_mhz: float

    @property
    def met(self) -> bool:
        return self.achieved_mhz >= self.required_mhz


@dataclass(frozen=True)
class NextpnrReport:
    """The parts of nextpnr's ``--report`` JSON that decide whether a build is usable."""

    utilization: dict[str, Utilization]
    clocks: dict[str, ClockFmax]

    def overused(self) -> list[tuple[str, Utilization]]:
        """Resources the design needs more of than the FPGA has, worst first."""
        over = [(name, u) for name, u in self.utilization.items() if u.used > u.available]
        return sorted(over, key=lambda item: item[1].used - item[1].available, reverse=True)

    def tightest_clock(self) -> tuple[str, ClockFmax]:
        """The clock with the least margin (achieved / required)."""
        if not self.clocks:
            raise GatewareError(
                "nextpnr's report has no clock, so the design's timing was not checked: the "
                "clock constraint did not reach nextpnr (does the design use the board clock?)"
            )
        return min(self.clocks.items(),
                   key=lambda item: item[1].achieved_mhz / item[1].required_mhz)


def parse_report(report: dict[str, Any] | str | Path) -> NextpnrReport:
    """Read nextpnr's ``--report`` output (a path, JSON text, or the parsed dict).

    Expected shape::

        {"utilization": {"ICESTORM_LC": {"used": 1286, "available": 5280}, ...},
         "fmax": {"cd_sync.clk": {"achieved": 15.9, "constraint": 12.0}}, ...}
    """
    if isinstance(report, Path):
        report = report.read_text()
    if isinstance(report, str):
        report = json.loads(report)
    try:
        utilization = {
            name: Utilization(int(entry["used"]), int(entry["available"]))
            for name, entry in report["utilization"].items()
        }
        clocks = {
            name: ClockFmax(float(entry["achieved"]), float(entry["constraint"]))
            for name, entry in report.get("fmax", {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a nextpnr report: {exc!r}") from exc
    return NextpnrReport(utilization, clocks)


_LOG_TIMING_FAIL = re.compile(
    r"ERROR: Max frequency for clock '([^']+)': ([\d.]+) MHz \(FAIL at ([\d.]+) MHz\)")
_LOG_UTILIZATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$", re.MULTILINE)


def parse_log_utilization(log_text: str) -> dict[str, Utilization]:
    """The ``Device utilisation`` table from nextpnr's text log.

    Used when place and route failed: nextpnr then writes no JSON report, but it has
    already logged the table (e.g. ``ICESTORM_LC:  6491/ 5280   122%``).
    """
    return {name: Utilization(int(used), int(available))
            for name, used, available in _LOG_UTILIZATION.findall(log_text)}


@dataclass(frozen=True)
class BuildResult:
    """A bitstream that fits and meets timing, and the figures that say so.

    Attributes
    ----------
    board:
        Registry name of the board.
    bitstream:
        The file to program.
    utilization:
        Resource name (``ICESTORM_LC``, ``ICESTORM_RAM``, ``SB_IO``, ...) to used/available.
    fmax_achieved_mhz, fmax_required_mhz:
        For the clock with the least margin (with one clock: the system clock).
    clocks:
        Every constrained clock, by nextpnr's net name.
    cached:
        True if this call reused an earlier build and ran no tool.
    digest:
        The content digest that keys the cache.
    directory:
        The cache entry: bitstream, report, logs, generated sources.
    build_seconds:
        How long synthesis, place and route took when the bitstream was built.
    toolchain:
        One line naming the tools and their versions.
    """

    board: str
    bitstream: Path
    utilization: dict[str, Utilization]
    fmax_achieved_mhz: float
    fmax_required_mhz: float
    clocks: dict[str, ClockFmax]
    cached: bool
    digest: str
    directory: Path
    build_seconds: float
    toolchain: str

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [f"bitstream: {self.bitstream}" + (" (cached)" if self.cached else
                                                   f" (built in {self.build_seconds:.0f} s)")]
        for name, u in sorted(self.utilization.items()):
            if u.used:
                lines.append(f"  {name:<16} {u.used:>6} / {u.available:<6} {u.fraction:>4.0%}")
        for name, clock in sorted(self.clocks.items()):
            lines.append(f"  clock {name}: {clock.achieved_mhz:.2f} MHz achieved, "
                         f"{clock.required_mhz:.2f} MHz required")
        return "\n".join(lines)


@dataclass(frozen=True)
class PreparedBuild:
    """Everything a build needs, computed without running any tool."""

    board: Board
    config: SystemConfig
    plan: Any  # amaranth.build.run.BuildPlan
    toolchain: Toolchain
    digest: str

    def directory(self, build_dir: Path) -> Path:
        return Path(build_dir) / self.board.name / self.digest[:_DIR_DIGITS]

    @property
    def bitstream_name(self) -> str:
        return DESIGN_NAME + self.board.bitstream_suffix


def prepare(board: str, config: SystemConfig, *,
            system: Callable[[SystemConfig], Any] | None = None) -> PreparedBuild:
    """Elaborate the design for ``board`` and compute its cache digest (no tool runs).

    ``system`` makes the design from ``config``; the default is
    :class:`spikeforge.hdl.top.AcquisitionSystem`.
    """
    spec = get_board(board)
    spec.check_config(config)
    toolchain = select_toolchain(spec.family)
    platform = spec.platform_class()()
    top = spec.top_class()(config, system=system)
    options = {"synth_opts": SYNTH_OPTS[spec.family]} if spec.family in SYNTH_OPTS else {}
    nextpnr_opts = " ".join([NEXTPNR_OPTS, *config.place_and_route])
    plan = platform.prepare(top, name=DESIGN_NAME, emit_src=False, nextpnr_opts=nextpnr_opts,
                            **options)
    key = {
        "cache_format": CACHE_FORMAT,
        "board": spec.name,
        "config": config.to_dict(),
        "toolchain": toolchain.digest(),
        "plan": plan.digest().hex(),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return PreparedBuild(spec, config, plan, toolchain, digest)


def build(board: str, config: SystemConfig, build_dir: Path = Path("build"), *,
          system: Callable[[SystemConfig], Any] | None = None) -> BuildResult:
    """The bitstream for ``config`` on ``board``: from the cache, or built now.

    Raises :class:`DoesNotFit` or :class:`TimingNotMet` (also for a cached result: the
    verdict is part of the build), :class:`ToolFailed` if a tool fails otherwise, and
    :class:`~spikeforge.boards.errors.ToolNotFound` if the toolchain is missing.
    """
    prepared = prepare(board, config, system=system)
    directory = prepared.directory(Path(build_dir).resolve())
    with locked_folder(directory):
        result = _load_cached(prepared, directory)
        if result is None:
            result = _run(prepared, directory)
    _check(prepared, result)
    return result


# -- cache ------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_cached(prepared: PreparedBuild, directory: Path) -> BuildResult | None:
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        if directory.exists():
            logger.info("cache entry %s is incomplete; rebuilding", directory)
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest["digest"] != prepared.digest:
            raise ValueError("digest differs")
        if manifest["bitstream"] != prepared.bitstream_name:
            raise ValueError("bitstream name differs")
        bitstream = directory / prepared.bitstream_name
        report_path = directory / REPORT_FILE
        if _sha256(bitstream) != manifest["bitstream_sha256"]:
            raise ValueError("bitstream changed")
        if _sha256(report_path) != manifest["report_sha256"]:
            raise ValueError("report changed")
        report = parse_report(report_path)
        build_seconds = float(manifest["build_seconds"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring damaged cache entry %s (%s); rebuilding", directory, exc)
        return None
    logger.info("%s bitstream is up to date: %s", prepared.board.title, bitstream)
    return _result(prepared, directory, bitstream, report, cached=True,
                   build_seconds=build_seconds)


def _write_manifest(prepared: PreparedBuild, directory: Path, bitstream: Path,
                    build_seconds: float) -> None:
    manifest = {
        "cache_format": CACHE_FORMAT,
        "digest": prepared.digest,
        "board": prepared.board.name,
        "config": prepared.config.to_dict(),
        "toolchain": {"kind": prepared.toolchain.kind, **prepared.toolchain.identity},
        "bitstream": bitstream.name,
        "bitstream_sha256": _sha256(bitstream),
        "report_sha256": _sha256(directory / REPORT_FILE),
        "build_seconds": round(build_seconds, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    temporary = directory / (MANIFEST_FILE + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, directory / MANIFEST_FILE)


def _clear(directory: Path) -> None:
    """Empty a cache entry folder (only the files a build puts there, plus the manifest)."""
    if not directory.exists():
        return
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink()


# -- running the tools ------------------------------------------------------------------------


def _script_command(plan: Any) -> list[str]:
    if sys.platform == "win32":
        return ["cmd", "/c", f"call {plan.script}.bat"]
    return ["sh", f"{plan.script}.sh"]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _run(prepared: PreparedBuild, directory: Path) -> BuildResult:
    _clear(directory)
    prepared.plan.extract(str(directory))
    log_path = directory / LOG_FILE
    logger.info("building %s bitstream in %s with %s (the first YoWASP run of an "
                "environment compiles WebAssembly and takes minutes)",
                prepared.board.title, directory, prepared.toolchain.describe())
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            returncode = subprocess.run(
                _script_command(prepared.plan), cwd=directory, stdout=log,
                stderr=subprocess.STDOUT, env=prepared.toolchain.environment(),
            ).returncode
        except OSError as exc:
            raise ToolFailed(f"could not start the build script in {directory}: {exc}",
                             log=log_path) from exc
    build_seconds = time.monotonic() - started
    if returncode != 0:
        _raise_tool_failure(prepared, directory, log_path, returncode)

    bitstream = directory / prepared.bitstream_name
    report_path = directory / REPORT_FILE
    if not bitstream.is_file():
        raise ToolFailed(f"the build finished but wrote no {bitstream.name}; see {log_path}",
                         log=log_path)
    try:
        report = parse_report(report_path)
    except (OSError, ValueError) as exc:
        raise ToolFailed(
            f"nextpnr wrote no usable {REPORT_FILE} ({exc}); if AMARANTH_nextpnr_opts is set "
            f"it replaces spikeforge's nextpnr options: unset it. Log: {log_path}",
            log=log_path,
        ) from exc
    _write_manifest(prepared, directory, bitstream, build_seconds)
    logger.info("built %s in %.1f s", bitstream, build_seconds)
    return _result(prepared, directory, bitstream, report, cached=False,
                   build_seconds=build_seconds)


def _raise_tool_failure(prepared: PreparedBuild, directory: Path, log_path: Path,
                        returncode: int) -> None:
    nextpnr_log = directory / f"{DESIGN_NAME}.tim"
    log_text = nextpnr_log.read_text(errors="replace") if nextpnr_log.is_file() else ""
    utilization = parse_log_utilization(log_text)
    over = NextpnrReport(utilization, {}).overused()
    if over:
        raise _does_not_fit(prepared, over, utilization)
    failed_clock = _LOG_TIMING_FAIL.search(log_text)
    if failed_clock:  # only without --timing-allow-fail, e.g. overridden by the environment
        name, achieved, required = failed_clock.groups()
        raise _timing_not_met(prepared, name, ClockFmax(float(achieved), float(required)),
                              directory, result=None)
    raise ToolFailed(
        f"building the {prepared.board.title} bitstream failed (exit status {returncode}); "
        f"full log: {log_path}\n{_tail(log_path)}",
        log=log_path,
    )


def _does_not_fit(prepared: PreparedBuild, over: list[tuple[str, Utilization]],
                  utilization: dict[str, Utilization] | None = None) -> DoesNotFit:
    name, worst = over[0]
    details = "; ".join(
        f"{n}: {u.used} used, {u.available} available ({u.used - u.available} too many, "
        f"{u.fraction:.0%})" for n, u in over)
    return DoesNotFit(
        f"the design does not fit the {prepared.board.title}'s {prepared.board.fpga}: "
        f"{details}. Use fewer channels, a smaller link_buffer_samples, or a bigger board "
        f"({prepared.config.describe()})",
        resource=name, used=worst.used, available=worst.available, utilization=utilization,
    )


def _result(prepared: PreparedBuild, directory: Path, bitstream: Path, report: NextpnrReport,
            *, cached: bool, build_seconds: float) -> BuildResult:
    if report.clocks:
        _, tightest = report.tightest_clock()
        achieved, required = tightest.achieved_mhz, tightest.required_mhz
    else:
        achieved = required = float("nan")
    return BuildResult(
        board=prepared.board.name, bitstream=bitstream, utilization=report.utilization,
        fmax_achieved_mhz=achieved, fmax_required_mhz=required, clocks=report.clocks,
        cached=cached, digest=prepared.digest, directory=directory,
        build_seconds=build_seconds, toolchain=prepared.toolchain.describe(),
    )


def _check(prepared: PreparedBuild, result: BuildResult) -> None:
    report = NextpnrReport(result.utilization, result.clocks)
    over = report.overused()
    if over:
        raise _does_not_fit(prepared, over, result.utilization)
    name, clock = report.tightest_clock()
    if not clock.met:
        raise _timing_not_met(prepared, name, clock, result.directory, result=result)


def _timing_not_met(prepared: PreparedBuild, name: str, clock: ClockFmax, directory: Path,
                    *, result: BuildResult | None) -> TimingNotMet:
    return TimingNotMet(
        f"the design is too slow for the {prepared.board.title}: clock {name} reaches "
        f"{clock.achieved_mhz:.2f} MHz but must run at {clock.required_mhz:.2f} MHz "
        f"({clock.achieved_mhz / clock.required_mhz - 1:+.1%}). Shorten the critical path "
        f"(see 'Critical path report' in {directory / (DESIGN_NAME + '.tim')})",
        clock=name, achieved_mhz=clock.achieved_mhz, required_mhz=clock.required_mhz,
        result=result,
    )
