"""Each core's share of a board build: the board's own netlist synthesised with the cores kept.

nextpnr reports utilisation per design, and the board build (``synth_ecp5`` / ``synth_ice40``
in Amaranth's script) flattens the design first, so neither says what each core costs.
:func:`core_shares` takes the same build plan as :func:`spikeforge.boards.build.build` (the
board top's RTLIL, the same ``synth_*`` command and options), marks each core of the
acquisition system (each direct submodule of ``top.system``: ``source``, ``framer``,
``detector``, ...) ``keep_hierarchy``, synthesises with Yosys (no place and route) and reads
``stat`` per module. Each core is flattened inside itself, as in the board build; only the
boundaries between cores are kept, so optimisations across a boundary (constants into a
core's ports, outputs nothing reads) are lost and the sum is a little above the flat build.
Everything outside the cores (pins, PLL, reset synchronisers, the RGMII adapters, wiring in
the system itself) is :data:`BOARD`.

Counts per core (:data:`SHARE_CELLS`), from the mapped cells: ``lut4`` (LUT4 cells),
``carry`` (ECP5 CCU2C: two LUT4s each; iCE40 SB_CARRY), ``ff`` (flip-flops), ``bram``
(DP16KD / SB_RAM40_4K), ``dsp`` (MULT18X18D / SB_MAC16), ``lutram`` (ECP5 distributed RAM,
TRELLIS_DPR16X4).

Results are cached next to the board builds (``<build_dir>/<board>/<digest>.shares.json``,
keyed by the build's content digest). ``spikeforge figures`` records them in each row it
builds (``shares``); ``spikeforge figures --shares-only`` fills them into rows already
recorded (:func:`backfill`), running Yosys only.
"""

import json
import logging
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from spikeforge.firmware.config import SystemConfig

from .errors import ToolFailed

__all__ = ["SHARE_CELLS", "BOARD", "SYSTEM_MODULE", "core_shares", "parse_stat",
           "shares_from_stat", "source_commit", "backfill"]

logger = logging.getLogger(__name__)

#: The share columns and the Yosys cells counted in each, per FPGA family.
SHARE_CELLS: dict[str, dict[str, tuple[str, ...]]] = {
    "ecp5": {"lut4": ("LUT4",), "carry": ("CCU2C",), "ff": ("TRELLIS_FF",),
             "bram": ("DP16KD",), "dsp": ("MULT18X18D",), "lutram": ("TRELLIS_DPR16X4",)},
    "ice40": {"lut4": ("SB_LUT4",), "carry": ("SB_CARRY",), "ff": ("SB_DFF*",),
              "bram": ("SB_RAM40_4K",), "dsp": ("SB_MAC16",), "lutram": ()},
}
#: The share of everything outside the system's cores.
BOARD = "(board)"
#: The acquisition system's module in the board top's RTLIL; its children are the cores.
SYSTEM_MODULE = "top.system"
_SYNTH = {"ecp5": "synth_ecp5", "ice40": "synth_ice40"}
_SHARES_SUFFIX = ".shares.json"


def _count(cells: dict[str, int], patterns: tuple[str, ...]) -> int:
    total = 0
    for pattern in patterns:
        if pattern.endswith("*"):
            total += sum(n for name, n in cells.items() if name.startswith(pattern[:-1]))
        else:
            total += cells.get(pattern, 0)
    return total


def parse_stat(text: str) -> dict[str, dict[str, int]]:
    """Cells by type per module from Yosys' ``stat -json`` output (module names without the
    leading backslash; anything Yosys printed before the JSON is skipped)."""
    data = json.loads(text[text.index("{"):])
    return {name.lstrip("\\"): {cell.lstrip("\\$"): int(n)
                                for cell, n in module.get("num_cells_by_type", {}).items()}
            for name, module in data.get("modules", {}).items()}


def shares_from_stat(modules: dict[str, dict[str, int]], family: str
                     ) -> dict[str, dict[str, int]]:
    """Per core (``top.system.<core>``, a ``$N`` suffix dropped) and :data:`BOARD`: the share
    columns of :data:`SHARE_CELLS`. ``modules`` is :func:`parse_stat`'s output of a
    synthesis in which only the cores kept their hierarchy."""
    columns = SHARE_CELLS[family]
    prefix = SYSTEM_MODULE + "."
    shares: dict[str, dict[str, int]] = {}
    for module, cells in modules.items():
        if module.startswith(prefix) and "." not in module[len(prefix):]:
            core = re.sub(r"\$\d+$", "", module[len(prefix):])
        else:
            core = BOARD
        counts = shares.setdefault(core, dict.fromkeys(columns, 0))
        for column, patterns in columns.items():
            counts[column] += _count(cells, patterns)
    return dict(sorted(shares.items(), key=lambda item: (item[0] == BOARD, item[0])))


def _core_modules(rtlil: str) -> list[str]:
    prefix = "module \\" + SYSTEM_MODULE + "."
    return [line[len("module \\"):].strip() for line in rtlil.splitlines()
            if line.startswith(prefix) and "." not in line[len(prefix):].strip()]


def source_commit() -> str:
    """``git rev-parse --short HEAD`` of this checkout, with ``+dirty`` when the design's
    sources (``hdl/``, ``firmware/``, ``boards/``) differ from it; "" outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "../hdl", "../firmware", "."], cwd=here, text=True,
                               capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if head and dirty else "")


def core_shares(board: str, config: SystemConfig, build_dir: Path = Path("build"), *,
                system: Callable[[SystemConfig], Any] | None = None
                ) -> dict[str, dict[str, int]]:
    """Each core's share of ``config``'s build on ``board`` (Yosys only; cached by the
    build's digest). Raises :class:`~spikeforge.boards.errors.ToolFailed` if Yosys fails."""
    from .build import SYNTH_OPTS, prepare

    prepared = prepare(board, config, system=system)
    family = prepared.board.family
    cache = Path(build_dir) / prepared.board.name / (prepared.digest[:16] + _SHARES_SUFFIX)
    try:
        cached = json.loads(cache.read_text())
        if cached.get("digest") == prepared.digest:
            return cached["shares"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    rtlil = prepared.plan.files["top.il"]
    rtlil = rtlil.decode() if isinstance(rtlil, bytes) else rtlil
    keep = " ".join(_core_modules(rtlil))
    synth = f"{_SYNTH[family]} {SYNTH_OPTS.get(family, '')} -top top"
    script = (f"read_rtlil top.il; hierarchy -top top; "
              f"setattr -mod -set keep_hierarchy 1 {keep}; {synth}; "
              "tee -q -o stat.json stat -json")
    yosys = prepared.toolchain.executables["yosys"]
    work = Path(build_dir) / "core_shares"
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # Relative paths in a working folder: YoWASP tools only see the current directory.
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        Path(tmp, "top.il").write_text(rtlil)
        done = subprocess.run([yosys, "-q", "-l", "shares.log", "-p", script], cwd=tmp,
                              text=True, capture_output=True,
                              env=prepared.toolchain.environment())
        if done.returncode != 0:
            raise ToolFailed(f"Yosys failed synthesising {board}'s cores one by one (exit "
                             f"{done.returncode}): {(done.stderr or done.stdout)[-2000:]}")
        modules = parse_stat(Path(tmp, "stat.json").read_text())
    shares = shares_from_stat(modules, family)
    logger.info("%s %d channels: core shares in %.0f s", board, config.channels,
                time.monotonic() - started)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"digest": prepared.digest, "shares": shares}, indent=1))
    return shares


def backfill(path: Path, *, boards: Iterable[str] | None = None,
             channels: Iterable[int] | None = None, variant: str | None = None,
             command: str, build_dir: Path = Path("build"), redo: bool = False,
             progress: Callable[[str], None] | None = None) -> int:
    """Fill ``shares`` into the recorded rows of ``path`` that match (a built row with its
    configuration; by default only rows without shares). Only the matched rows' ``shares``,
    ``shares_command`` and ``shares_commit`` change; everything else in the file is kept as
    it is. Writes after each row (a long run keeps what it did). Returns the rows filled."""
    boards = set(boards) if boards else None
    channels = set(channels) if channels else None
    filled = 0
    for index in range(len(json.loads(Path(path).read_text())["rows"])):
        row = json.loads(Path(path).read_text())["rows"][index]
        if (boards is not None and row["board"] not in boards
                or channels is not None and row["channels"] not in channels
                or variant is not None and row.get("variant", "") != variant
                or not row.get("config") or (row.get("shares") and not redo)):
            continue
        commit = source_commit()
        shares = core_shares(row["board"], SystemConfig.from_dict(row["config"]), build_dir)
        # Re-read: another `spikeforge figures` may have written the file meanwhile.
        data = json.loads(Path(path).read_text())
        for other in data["rows"]:
            if (other["board"], other["channels"], other.get("variant", "")) == \
                    (row["board"], row["channels"], row.get("variant", "")) \
                    and other.get("config") == row["config"]:
                other.update(shares=shares, shares_command=command, shares_commit=commit)
        Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        filled += 1
        if progress is not None:
            name = row["board"] + (f" + {row['variant']}" if row.get("variant") else "")
            progress(f"{name} {row['channels']} ch: shares of {len(shares)} parts")
    return filled
