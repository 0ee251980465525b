"""Resource and timing figures: build reference configurations, record them, render a table.

``spikeforge figures`` builds, for each board, the reference configuration
(:func:`reference_config`) at each channel count of :data:`REFERENCE_CHANNELS` that the
board's clock can serve at :data:`REFERENCE_RATE_HZ`, and records for each build:
utilisation (logic, flip-flops, block RAM, SPRAM, DSP), achieved against required Fmax,
and the verdict (fits and meets timing, does not fit, too slow, more channels than the
sample period has cycles). Counts above the first failure are not built (the design only
grows with the channel count).

The design is whatever :class:`spikeforge.hdl.top.AcquisitionSystem` elaborates to for the
configuration, so cores enabled by the configuration are in the figures without a change
here; the ``cores`` of each row are the system's submodules as elaborated.

The results go to :data:`FIGURES_FILE` (JSON, read by ``spikeforge boards`` for "the
largest configuration that fits") and, as a Markdown table, between the
:data:`DOCS_BEGIN` / :data:`DOCS_END` markers of ``docs/boards.md``.
"""

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spikeforge.firmware.compression import CodecConfig, worst_case_words
from spikeforge.firmware.compression_v2 import worst_case_bits_v2
from spikeforge.firmware.config import MAX_CHANNELS, V2_CARRY_WORDS, SystemConfig
from spikeforge.firmware.errors import ConfigError

from .build import BuildResult, Utilization, build
from .errors import DoesNotFit, TimingNotMet, ToolFailed
from .registry import Board, get_board

__all__ = [
    "REFERENCE_CHANNELS", "REFERENCE_RATE_HZ", "FIGURES_FILE", "DOCS_BEGIN", "DOCS_END",
    "FigureRow", "reference_config", "run_figures", "load_figures", "save_figures",
    "max_channels", "render_table", "update_docs", "system_cores", "DETECTION",
    "DETECTION_OVERRIDES", "variant_of", "FULL", "CODEC", "REFERENCE_BLOCK_SAMPLES", "PRIVATE",
    "AUTH", "closest_limit",
]

logger = logging.getLogger(__name__)

#: Channel counts of the reference configurations.
REFERENCE_CHANNELS = (16, 32, 64, 128, 256, 512, 1024)
#: Sample rate of the reference configurations (per channel).
REFERENCE_RATE_HZ = 30_000
#: Samples in one frame of a reference configuration, at most (whole sweeps, at least one).
REFERENCE_FRAME_SAMPLES = 256
#: Where the recorded figures live (package data: ``spikeforge boards`` reads it).
FIGURES_FILE = Path(__file__).parent / "figures.json"
DOCS_BEGIN = "<!-- figures:begin (written by `spikeforge figures`; do not edit) -->"
DOCS_END = "<!-- figures:end -->"

OK = "ok"
DOES_NOT_FIT = "does not fit"
TOO_SLOW = "timing not met"
TOO_FEW_CYCLES = "sample period too short"
NOT_BUILT = "not built"
TOOL_FAILED = "tool failed"

#: The detection-enabled reference configurations: ``spikeforge figures --config FILE`` with
#: these overrides (FILE holding ``{"detector": {"enabled": true}}``) records rows of this
#: variant next to the board's default rows.
DETECTION = "detection"
DETECTION_OVERRIDES = {"detector": {"enabled": True}}


#: Every core that exists enabled: detection and the lossless coder (``boards/full.json``).
FULL = "full"
#: The lossless coder without detection.
CODEC = "codec"
#: The same with the v2 coder in v1's place (``boards/full-v2.json``).
FULL_V2 = "full-v2"
CODEC_V2 = "codec-v2"
#: Suffix of a variant with the link cipher and command authentication
#: (``stream_cipher`` with ``control_key``; ``boards/private.json``: ``full+private``).
PRIVATE = "private"
#: Suffix of a variant with command authentication alone (``control_key``, no cipher).
AUTH = "auth"
#: Samples in one coded block of a reference configuration, at most: ``codec.block_sweeps``
#: is capped at this many samples' worth of sweeps (256 sweeps at 16 channels, 4 at 1024),
#: because the link buffer must hold two worst-case blocks (``hdl/framer.py``) and grows
#: with the block, not with the channel count alone.
REFERENCE_BLOCK_SAMPLES = 4096


def variant_of(config: SystemConfig) -> str:
    """The reference variant a configuration belongs to: the cores', then ``+private`` with
    the stream cipher (and command authentication, which it needs) or ``+auth`` with
    command authentication alone (``full+private``: ``boards/private.json``)."""
    if config.codec.enabled:
        cores = FULL if config.detector.enabled else CODEC
    elif config.codec_v2.enabled:
        cores = FULL_V2 if config.detector.enabled else CODEC_V2
    else:
        cores = DETECTION if config.detector.enabled else ""
    private = (PRIVATE if config.stream_cipher
               else AUTH if config.control_key is not None else "")
    return "+".join(part for part in (cores, private) if part)


def _variant(spec: Board, overrides: dict[str, Any] | None) -> str:
    """The variant ``overrides`` make of ``spec``'s reference configurations (the same at
    every channel count; asked of one channel, which every board's clock serves)."""
    return variant_of(reference_config(spec, 1, overrides))

#: nextpnr resource names per column, first match wins (iCE40 names, then ECP5 names).
_COLUMNS = {
    "logic": ("ICESTORM_LC", "TRELLIS_COMB"),
    "ff": ("TRELLIS_FF",),
    "bram": ("ICESTORM_RAM", "DP16KD"),
    "spram": ("ICESTORM_SPRAM",),
    "dsp": ("ICESTORM_DSP", "MULT18X18D"),
}


@dataclass
class FigureRow:
    """One reference build and what came of it."""

    board: str
    channels: int
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    utilization: dict[str, list[int]] = field(default_factory=dict)  # name -> [used, avail]
    flip_flops: int | None = None
    fmax_achieved_mhz: float | None = None
    fmax_required_mhz: float | None = None
    binding: str = ""       # what limits: a resource name, "Fmax", "cycles per sample"
    message: str = ""
    cores: list[str] = field(default_factory=list)
    build_seconds: float | None = None
    #: Which reference configuration: "" the board's default, :data:`DETECTION` with the
    #: conditioning and detection path enabled (``--config`` with ``detector.enabled``),
    #: :data:`FULL` with detection and the lossless coder (``boards/full.json``).
    variant: str = ""
    #: Each core's share of the build (``core -> {"lut4", "carry", "ff", "bram", "dsp",
    #: "lutram"}``, :mod:`spikeforge.boards.core_shares`), the command that recorded it and
    #: the commit of the sources it was synthesised from (``+dirty``: with local changes).
    shares: dict[str, dict[str, int]] = field(default_factory=dict)
    shares_command: str = ""
    shares_commit: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    def used(self, column: str) -> tuple[int, int] | None:
        """``(used, available)`` for a table column (``logic``, ``bram``, ...)."""
        if column == "ff" and self.flip_flops is not None and "TRELLIS_FF" not in \
                self.utilization:
            return (self.flip_flops, 0)
        for name in _COLUMNS[column]:
            if name in self.utilization:
                used, available = self.utilization[name]
                return used, available
        return None


def reference_config(board: Board | str, channels: int,
                     overrides: dict[str, Any] | None = None) -> SystemConfig:
    """The configuration that the figures build for ``channels`` on ``board``.

    The board's default configuration (its clock and link rate, with whichever cores it
    enables), with ``overrides`` (``SystemConfig`` fields, e.g. enabling a core) laid over
    it, at :data:`REFERENCE_RATE_HZ`; frames of whole sweeps up to
    :data:`REFERENCE_FRAME_SAMPLES` samples (one sweep per frame from 256 channels up) and
    a link buffer of two frames rounded up to a power of two, so that the configuration
    validates at any channel count. With the lossless coder enabled, ``codec.block_sweeps``
    is capped at :data:`REFERENCE_BLOCK_SAMPLES` samples per block and the link buffer also
    holds two worst-case blocks. Large counts drop frames on the UART link: expected,
    counted, and not what the figures are about (fit and timing).

    Raises :class:`~spikeforge.firmware.errors.ConfigError` if the board's clock has fewer
    cycles per sample period than ``channels`` + 1.
    """
    spec = get_board(board) if isinstance(board, str) else board
    sweeps_per_frame = max(1, REFERENCE_FRAME_SAMPLES // channels)
    frame_samples = sweeps_per_frame * channels
    data = {**spec.default_config.to_dict(), **(overrides or {})}
    buffer_words = 2 * frame_samples
    # The coded buffer must hold two worst-case blocks (one sent, one admitted).
    for name in ("codec", "codec_v2"):
        codec = data.get(name)
        if isinstance(codec, dict) and codec.get("enabled"):
            codec = {**getattr(spec.default_config, name).to_dict(), **codec}
            codec["block_sweeps"] = max(1, min(codec["block_sweeps"],
                                               REFERENCE_BLOCK_SAMPLES // channels))
            data[name] = codec
            buffer_words = max(buffer_words, 2 * _worst_block_words(name, channels, codec))
    data.update(channels=channels, sample_rate_hz=REFERENCE_RATE_HZ, clock_hz=spec.clock_hz,
                sweeps_per_frame=sweeps_per_frame,
                link_buffer_samples=1 << (buffer_words - 1).bit_length())
    return SystemConfig.from_dict(data)


def _worst_block_words(name: str, channels: int, codec: dict[str, Any]) -> int:
    """Words of a worst-case block of the ``codec`` or ``codec_v2`` fields ``codec``."""
    if name == "codec_v2":
        bits = worst_case_bits_v2(channels, codec["block_sweeps"])
        return -(-bits // 16) + V2_CARRY_WORDS
    return worst_case_words(channels, codec["block_sweeps"], CodecConfig(**codec))


def system_cores(config: SystemConfig, system: Callable[[SystemConfig], Any] | None = None
                 ) -> list[str]:
    """Names of the submodules the acquisition system elaborates to for ``config``."""
    from amaranth.hdl import Fragment

    from .board_top import acquisition_system

    fragment = Fragment.get((system or acquisition_system)(config), None)
    return [name for _, name, _ in fragment.subfragments if name]


_YOSYS_CELL = re.compile(r"^\s+(\d+)\s+(SB_DFF\w*|TRELLIS_FF)\s*$", re.MULTILINE)


def _flip_flops(result: BuildResult) -> int | None:
    """Flip-flops from Yosys' final statistics (nextpnr-ice40 reports only logic cells)."""
    if "TRELLIS_FF" in result.utilization:
        return result.utilization["TRELLIS_FF"].used
    report = result.directory / "top.rpt"
    try:
        text = report.read_text(errors="replace")
    except OSError:
        return None
    last = text.rfind("Printing statistics")
    if last < 0:
        return None
    tail = text[last:]
    tail = tail[:tail.find("=== design hierarchy ===")] if "=== design hierarchy" in tail \
        else tail
    counts = _YOSYS_CELL.findall(tail)
    return sum(int(n) for n, _ in counts) if counts else None


def _utilization(utilization: dict[str, Utilization]) -> dict[str, list[int]]:
    return {name: [u.used, u.available] for name, u in sorted(utilization.items())
            if u.used or any(name in names for names in _COLUMNS.values())}


def _row_from_result(board: str, config: SystemConfig, result: BuildResult,
                     status: str = OK) -> FigureRow:
    return FigureRow(
        board=board, channels=config.channels, status=status, config=config.to_dict(),
        utilization=_utilization(result.utilization), flip_flops=_flip_flops(result),
        fmax_achieved_mhz=round(result.fmax_achieved_mhz, 2),
        fmax_required_mhz=round(result.fmax_required_mhz, 2),
        build_seconds=round(result.build_seconds, 1),
    )


def closest_limit(utilization: dict, required_mhz: float, achieved_mhz: float) -> str:
    """What a passing build is closest to running out of: the most used resource kind, or
    "Fmax". Kinds the FPGA has one of (``USRMCLK``, ``JTAGG``, ...) are left out: a design
    uses such a primitive or not, it does not grow with the channel count."""
    fractions = {name: used / available
                 for name, (used, available) in utilization.items() if available > 1}
    fractions["Fmax"] = required_mhz / achieved_mhz
    return max(fractions, key=fractions.get)


def figure_for(board: str, channels: int, build_dir: Path, *,
               overrides: dict[str, Any] | None = None,
               system: Callable[[SystemConfig], Any] | None = None,
               shares: bool = True) -> FigureRow:
    """Build one reference configuration and record the outcome (never raises for a
    design that does not fit or is too slow: that is a figure too). With ``shares``, each
    core's share too (:func:`~spikeforge.boards.core_shares.core_shares`, one more Yosys run;
    a failure there is logged and leaves ``shares`` empty)."""
    spec = get_board(board)
    try:
        config = reference_config(spec, channels, overrides)
    except ConfigError:
        cycles = spec.clock_hz // REFERENCE_RATE_HZ
        if channels + 1 <= cycles:  # another configuration problem: say it whole
            raise
        return FigureRow(board=spec.name, channels=channels, status=TOO_FEW_CYCLES,
                         binding="cycles per sample", variant=_variant(spec, overrides),
                         message=f"{spec.clock_hz / 1e6:g} MHz / {REFERENCE_RATE_HZ // 1000} "
                                 f"kS/s = {cycles} cycles serve at most {cycles - 1} channels")
    cores = system_cores(config, system)
    variant = variant_of(config)
    try:
        result = build(spec.name, config, build_dir, system=system)
        row = _row_from_result(spec.name, config, result)
        row.binding = closest_limit(row.utilization, result.fmax_required_mhz,
                                    result.fmax_achieved_mhz)
    except TimingNotMet as exc:
        if exc.result is not None:
            row = _row_from_result(spec.name, config, exc.result, TOO_SLOW)
        else:
            row = FigureRow(board=spec.name, channels=channels, status=TOO_SLOW,
                            config=config.to_dict(),
                            fmax_achieved_mhz=round(exc.achieved_mhz, 2),
                            fmax_required_mhz=round(exc.required_mhz, 2))
        row.binding, row.message = "Fmax", str(exc).split(". ")[0]
    except DoesNotFit as exc:
        row = FigureRow(board=spec.name, channels=channels, status=DOES_NOT_FIT,
                        config=config.to_dict(),
                        utilization={name: [u.used, u.available]
                                     for name, u in sorted(exc.utilization.items())},
                        binding=exc.resource,
                        message=f"{exc.resource}: {exc.used} used, {exc.available} available")
    except ToolFailed as exc:
        row = FigureRow(board=spec.name, channels=channels, status=TOOL_FAILED,
                        config=config.to_dict(), message=str(exc).splitlines()[0])
    row.cores = cores
    row.variant = variant
    if shares and row.status in (OK, TOO_SLOW, DOES_NOT_FIT):
        from .core_shares import core_shares, source_commit

        try:
            row.shares = core_shares(spec.name, config, build_dir, system=system)
            row.shares_commit = source_commit()
        except ToolFailed as exc:
            logger.warning("%s %d channels: no core shares (%s)", spec.name, channels, exc)
    return row


def run_figures(boards: Iterable[str], channels: Iterable[int] = REFERENCE_CHANNELS, *,
                build_dir: Path = Path("build"),
                overrides: dict[str, Any] | None = None,
                system: Callable[[SystemConfig], Any] | None = None,
                keep_going: bool = False, clock_limit: bool = True, shares: bool = True,
                progress: Callable[[FigureRow], None] | None = None) -> list[FigureRow]:
    """Build the reference configurations of ``boards``; one row per (board, count).

    Counts above a board's first failure are recorded as not built, unless ``keep_going``.
    With ``clock_limit``, each board also builds the most channels its clock serves at
    :data:`REFERENCE_RATE_HZ` (``clock_hz / rate - 1``) when that is below the largest
    count asked for: the limit itself, not only the power of two under it.
    """
    rows = []
    for board in boards:
        spec = get_board(board)
        counts = set(channels)
        most = spec.clock_hz // REFERENCE_RATE_HZ - 1
        if clock_limit and most < max(counts):
            counts.add(most)
        failed_at = None
        for count in sorted(counts):
            if count > MAX_CHANNELS:
                continue
            if failed_at is not None and not keep_going:
                row = FigureRow(board=spec.name, channels=count, status=NOT_BUILT,
                                variant=_variant(spec, overrides),
                                message=f"{failed_at} channels already failed")
            else:
                started = time.monotonic()
                row = figure_for(spec.name, count, build_dir, overrides=overrides,
                                 system=system, shares=shares)
                logger.info("%s %d channels: %s (%.0f s)", spec.name, count, row.status,
                            time.monotonic() - started)
                if not row.ok and failed_at is None:
                    failed_at = count
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows


# -- the record -------------------------------------------------------------------------------


def load_figures(path: Path = FIGURES_FILE) -> dict[str, Any]:
    """The recorded figures: ``{"command": ..., "toolchain": ..., "rows": [FigureRow]}``
    (empty rows if nothing was recorded yet)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"rows": []}
    data["rows"] = [FigureRow(**row) for row in data.get("rows", [])]
    return data


def save_figures(rows: list[FigureRow], *, command: str, toolchain: str,
                 path: Path = FIGURES_FILE) -> dict[str, Any]:
    """Merge ``rows`` into the record at ``path`` (rows of other boards are kept, rows of
    the same board and channel count replaced) and write it."""
    record = load_figures(path)
    fresh = {(r.board, r.channels, r.variant) for r in rows}
    kept = [r for r in record["rows"] if (r.board, r.channels, r.variant) not in fresh]
    boards = list(dict.fromkeys(r.board for r in [*kept, *rows]))
    merged = sorted([*kept, *rows],
                    key=lambda r: (boards.index(r.board), r.variant, r.channels))
    commands = dict(record.get("commands", {}))
    for board, variant in {(r.board, r.variant) for r in rows}:
        commands[f"{board} + {variant}" if variant else board] = command
    for row in rows:
        if row.shares and not row.shares_command:
            row.shares_command = command
    data = {
        "reference_rate_hz": REFERENCE_RATE_HZ,
        "toolchain": toolchain,
        "generated": time.strftime("%Y-%m-%d"),
        "commands": commands,
        "rows": [asdict(r) for r in merged],
    }
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    data["rows"] = merged
    return data


def max_channels(rows: Iterable[FigureRow], board: str, variant: str = "") -> FigureRow | None:
    """The largest reference configuration of ``board`` (of ``variant``) that fits and meets
    timing."""
    fitting = [r for r in rows if r.board == board and r.ok and r.variant == variant]
    return max(fitting, key=lambda r: r.channels) if fitting else None


def largest_that_fits(rows: Iterable[FigureRow], board: str, variant: str = "") -> str:
    """One line for ``spikeforge boards``: the largest recorded count of ``board`` (of
    ``variant``) that fits and meets timing, and the first failure above it or, if none
    failed, the limit closest to binding."""
    rows = [r for r in rows if r.board == board and r.variant == variant]
    if not rows:
        return f"not measured; run spikeforge figures --board {board}"
    best = max_channels(rows, board, variant)
    fitted = best.channels if best else 0
    failure = next((r for r in rows if r.channels > fitted and not r.ok
                    and r.status != NOT_BUILT), None)
    why = f"{failure.channels}: {failure.status}, {failure.binding}" if failure else ""
    if best is None:
        return f"none of the reference configurations ({why})" if why else \
            "none of the reference configurations"
    if why:
        return f"{best.channels} channels ({why})"
    return f"{best.channels} channels (the most tried; closest limit: {best.binding})"


def _cell(row: FigureRow, column: str) -> str:
    value = row.used(column)
    if value is None:
        return "–"
    used, available = value
    return f"{used}" if not available else f"{used}/{available} ({used / available:.0%})"


def render_table(rows: list[FigureRow]) -> str:
    """The Markdown table of ``rows`` and, per board, the largest configuration and what
    limits it."""
    lines = [
        "| board | channels | logic (LC / LUT4) | flip-flops | block RAM | SPRAM | DSP | "
        "Fmax achieved / required (MHz) | result | limit (closest, or the failure) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        fmax = (f"{row.fmax_achieved_mhz:.1f} / {row.fmax_required_mhz:.1f}"
                if row.fmax_achieved_mhz is not None else "–")
        result = row.status if row.ok or not row.message else f"{row.status}: {row.message}"
        board = f"{row.board} + {row.variant}" if row.variant else row.board
        lines.append(
            f"| {board} | {row.channels} | {_cell(row, 'logic')} | {_cell(row, 'ff')} | "
            f"{_cell(row, 'bram')} | {_cell(row, 'spram')} | {_cell(row, 'dsp')} | {fmax} | "
            f"{result} | {row.binding or '–'} |")
    lines.append("")
    for board, variant in dict.fromkeys((r.board, r.variant) for r in rows):
        best = max_channels(rows, board, variant)
        first_failure = next((r for r in rows if r.board == board and r.variant == variant
                              and not r.ok and r.status != NOT_BUILT), None)
        name = f"{board} + {variant}" if variant else board
        text = (f"**{name}**: at most **{best.channels} channels** at "
                f"{REFERENCE_RATE_HZ // 1000} kS/s fit and meet timing"
                if best else f"**{name}**: no reference configuration fits and meets timing")
        if first_failure is not None:
            text += (f"; {first_failure.channels} channels fail: {first_failure.status} "
                     f"({first_failure.binding or first_failure.message})")
        elif best is not None:
            text += f" (the largest count tried; closest to its limit: {best.binding})"
        lines.append(f"- {text}.")
    return "\n".join(lines)


def update_docs(doc: Path, rows: list[FigureRow], command: str) -> None:
    """Replace the figures section of ``doc`` (between the markers) with the table."""
    text = doc.read_text()
    cores = list(dict.fromkeys(core for row in rows for core in row.cores))
    built = f" Cores in the design: {', '.join(cores)}." if cores else ""
    section = (f"{DOCS_BEGIN}\nProduced by `{command}` (reference configurations: "
               f"{REFERENCE_RATE_HZ // 1000} kS/s per channel, each board's default clock and "
               f"link).{built}\n\n{render_table(rows)}\n{DOCS_END}")
    if DOCS_BEGIN in text and DOCS_END in text:
        before = text[:text.index(DOCS_BEGIN)]
        after = text[text.index(DOCS_END) + len(DOCS_END):]
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n## Resource and timing figures\n\n" + section + "\n"
    doc.write_text(text)
