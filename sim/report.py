"""Evaluation report: one self-contained HTML page (and its PNGs) from the benchmarks' JSON.

``spikeforge report --out DIR`` runs :func:`write_report`. Sections and their inputs
(docs/report.md):

* **detection**: ``spikeforge bench detect --json FILE`` (:func:`spikeforge.sim.accuracy.to_json`):
  F1 per recording under the unit score, recall against unit SNR, the latency histogram;
* **compression**: ``spikeforge bench compress --json FILE``
  (:func:`spikeforge.sim.compression_bench.to_json`): ratio per codec per recording class,
  bits per sample (per channel where the JSON has it);
* **boards**: ``boards/figures.json`` (``spikeforge figures``): logic, block RAM and Fmax
  against channel count, per board and variant, the cores each build holds, and each core's
  share (LUT4s and block RAM, stacked per board at its recorded channel counts) where a row
  records it (``shares``, :mod:`spikeforge.boards.core_shares`);
* **link budget**: computed here by :func:`spikeforge.host.budget.budget`: which bandwidth
  mode fits which link at which channel count.

Every table is made from the same dicts the figures are drawn from (:class:`Table`), and
every figure's caption names the command and the commit that produced its data. A missing
or unreadable input makes its section say so and name the command that makes it; the other
sections are written all the same.
"""

import base64
import html
import json
import math
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.host.errors import ExitCode

from .accuracy import METHOD_LABELS, SNR_BINS, git_commit

__all__ = ["Table", "Figure", "Section", "ReportUnavailable", "write_report",
           "detection_section", "compression_section", "boards_section", "budget_section",
           "DEFAULT_DETECT_JSON", "DEFAULT_COMPRESS_JSON", "BUDGET_LINKS", "BUDGET_CHANNELS",
           "SHARE_COLUMNS"]

#: Where ``spikeforge report`` looks for the benchmarks' JSON unless told otherwise.
DEFAULT_DETECT_JSON = Path("build/report/detect.json")
DEFAULT_COMPRESS_JSON = Path("build/report/compress.json")
#: The commands that make them (named by a section whose input is missing).
DETECT_COMMAND = "spikeforge bench detect --json {path}"
COMPRESS_COMMAND = "spikeforge bench compress --json {path}"
FIGURES_COMMAND = "spikeforge figures --board BOARD --channels N (writes boards/figures.json)"
#: Links of the budget section: (label, link, bit/s or None for the link's default).
BUDGET_LINKS = (("UART 4 Mbaud (iCEBreaker)", "uart", 4_000_000.0),
                ("UART 3 Mbaud (ULX3S)", "uart", 3_000_000.0),
                ("Gigabit Ethernet (UDP)", "ethernet", None))
BUDGET_CHANNELS = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
BUDGET_RATE_HZ = 30_000


class ReportUnavailable(SpikeforgeError):
    """The report cannot be drawn: matplotlib is not installed."""

    exit_code = ExitCode.ENVIRONMENT


# -- building blocks --------------------------------------------------------------------------

@dataclass
class Table:
    """A table made from dicts: ``rows`` hold the values themselves (numbers stay numbers);
    ``formats`` maps a column to a format spec (default ``.3f`` for floats)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    formats: dict[str, str] = field(default_factory=dict)

    def cell(self, column: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return format(value, self.formats.get(column, ".3f"))
        if isinstance(value, int):
            return format(value, self.formats.get(column, "d"))
        return str(value)

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self.cell(c, row.get(c)))}</td>"
                             for c in self.columns) + "</tr>"
            for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Figure:
    name: str          #: PNG file name without extension
    caption: str
    png: bytes


@dataclass
class Section:
    title: str
    intro: str = ""
    blocks: list[Figure | Table | str] = field(default_factory=list)
    missing: str = ""  #: why the section is empty, and the command that fills it


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ReportUnavailable(
            f"the report needs matplotlib ({exc}); install it with "
            "pip install 'spikeforge[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight",
                metadata={"Software": None})
    _pyplot().close(fig)
    return buffer.getvalue()


def _provenance(command: str | None, commit: str | None) -> str:
    return (f"Command: <code>{html.escape(command or 'not recorded')}</code>; commit: "
            f"<code>{html.escape(commit or 'not recorded in the input')}</code>.")


def _load_json(path: Path, what: str, command: str) -> tuple[dict[str, Any] | None, str]:
    """(data, "") or (None, why it is missing and the command that makes it)."""
    try:
        return json.loads(Path(path).read_text()), ""
    except FileNotFoundError:
        why = f"{path} does not exist"
    except (OSError, ValueError) as exc:
        why = f"{path} cannot be read as JSON ({exc})"
    return None, (f"The {what} section is missing: {why}. Make it with "
                  f"<code>{html.escape(command.format(path=path))}</code>, then run "
                  "<code>spikeforge report</code> again.")


def _file_commit(path: Path) -> str | None:
    """The commit that last changed ``path`` (``git log -1``), or None."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%H", "--", path.name],
                             cwd=path.resolve().parent, capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


# -- detection --------------------------------------------------------------------------------

def detection_section(path: Path) -> Section:
    section = Section("Detection accuracy")
    data, missing = _load_json(path, "detection", DETECT_COMMAND)
    if data is None or not data.get("recordings"):
        section.missing = missing or f"{path} holds no recordings."
        return section
    plt = _pyplot()
    settings = data.get("settings", {})
    where = _provenance(settings.get("command"), settings.get("commit"))
    recordings = data["recordings"]
    methods = [m for m in METHOD_LABELS if m in recordings[0]["unit_score"]]
    section.intro = (
        f"Unit score: per unit on its own channels (the template's peak channel and those "
        f"within {settings.get('unit_radius_um', '?')} µm), one hit per spike within "
        f"±{settings.get('match_window_ms', '?')} ms, threshold k = "
        f"{settings.get('threshold_k', '?')}; every other event is false (docs/detection.md, "
        "“Scoring”). The any-channel F1 is the earlier, lenient score. " + where)

    table = Table(["recording", "rate_hz", "units"]
                  + [f"F1 {METHOD_LABELS[m]}" for m in methods]
                  + ["P ours", "R ours", "duplicates ours", "ours >= SI", "any-channel F1 ours"],
                  [], {"rate_hz": "d"})
    for r in recordings:
        row: dict[str, Any] = {"recording": r["name"], "rate_hz": r["rate_hz"],
                               "units": r["units"]}
        for m in methods:
            row[f"F1 {METHOD_LABELS[m]}"] = r["unit_score"][m]["f1"]
        ours = r["unit_score"]["ours"]
        row.update({"P ours": ours["precision"], "R ours": ours["recall"],
                    "duplicates ours": ours["duplicates"], "ours >= SI": r["at_least_si"],
                    "any-channel F1 ours": r["any_channel_score"]["ours"]["f1"]})
        table.rows.append(row)

    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(recordings) + 2), 4.2))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        ax.bar([x + i * width for x in range(len(recordings))],
               [r["unit_score"][m]["f1"] for r in recordings], width,
               label=METHOD_LABELS[m])
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(recordings))],
                  [f"{r['name']}\n{r['rate_hz'] // 1000} kS/s" for r in recordings],
                  rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("F1 (unit score)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=2)
    section.blocks.append(Figure("detection_f1", "F1 per recording, unit score. " + where,
                                 _png(fig)))

    fig, ax = plt.subplots(figsize=(7, 4.2))
    snr_table = Table(["unit SNR", "units", "spikes"] + [METHOD_LABELS[m] for m in methods],
                      [])
    for m in methods:
        snr, recall = [], []
        for r in recordings:
            for s, rec in zip(r["unit_snr"], r["unit_score"][m]["unit_recall"]):
                if rec is not None:
                    snr.append(s)
                    recall.append(rec)
        ax.scatter(snr, recall, s=9, alpha=0.5, label=METHOD_LABELS[m])
    for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:]):
        row = {"unit SNR": f"{lo:g}-{hi:g}" if math.isfinite(hi) else f">= {lo:g}"}
        for m in methods:
            units = spikes = hits = 0
            for r in recordings:
                score = r["unit_score"][m]
                for s, n, h in zip(r["unit_snr"], score["unit_spikes"], score["unit_hits"]):
                    if lo <= s < hi and n:
                        units, spikes, hits = units + 1, spikes + n, hits + h
            row.update({"units": units, "spikes": spikes,
                        METHOD_LABELS[m]: hits / spikes if spikes else None})
        if row["units"]:
            snr_table.rows.append(row)
    ax.set_xscale("log")
    ax.set_xlabel("unit SNR (trough on the peak channel / noise σ)")
    ax.set_ylabel("recall per unit (unit score)")
    ax.axvline(settings.get("threshold_k", 5.0), color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=7)
    section.blocks += [table, Figure(
        "detection_recall_snr", "Recall per unit against the unit's SNR, every recording; "
        "the dashed line is the threshold k. " + where, _png(fig)),
        "<p>Recall pooled per SNR bin (spikes found / spikes of the bin's units):</p>",
        snr_table]

    fig, ax = plt.subplots(figsize=(7, 3.6))
    latency_rows = []
    for rate in sorted({r["rate_hz"] for r in recordings}):
        counts: dict[int, int] = {}
        for r in recordings:
            if r["rate_hz"] == rate:
                for delay, n in r["latency_samples"]["histogram"]:
                    counts[delay] = counts.get(delay, 0) + n
        if not counts:
            continue
        delays = sorted(counts)
        ax.bar([d / rate * 1e3 for d in delays], [counts[d] for d in delays],
               width=0.8 / rate * 1e3, alpha=0.6, label=f"{rate // 1000} kS/s")
        total = sum(counts.values())
        ordered = [d for d in delays for _ in range(counts[d])]
        latency_rows.append({"rate_hz": rate, "events": total,
                             "median samples": float(ordered[total // 2]),
                             "max samples": max(delays)})
    ax.set_xlabel("latency: true spike → sweep the event can leave the core (ms)")
    ax.set_ylabel("events (our hits)")
    ax.legend(fontsize=7)
    section.blocks += [Figure("detection_latency", "Latency histogram of our detector's hits "
                              "(unit score), per sample rate. " + where, _png(fig)),
                       Table(["rate_hz", "events", "median samples", "max samples"],
                             latency_rows, {"median samples": ".1f"})]
    return section


# -- compression ------------------------------------------------------------------------------

def compression_section(path: Path) -> Section:
    section = Section("Compression")
    data, missing = _load_json(path, "compression", COMPRESS_COMMAND)
    if data is None or not data.get("recordings"):
        section.missing = missing or f"{path} holds no recordings."
        return section
    plt = _pyplot()
    settings = data.get("settings", {})
    where = _provenance(settings.get("command"), settings.get("commit"))
    classes = data.get("classes", [])
    codecs = list(classes[0]["ratio"]) if classes else list(data["recordings"][0]["ratio"])
    section.intro = ("Ratio = raw 16-bit bytes / compressed bytes, per recording class (sum "
                     "over its recordings). " + where)
    ratio_table = Table(["class", "recordings"] + codecs,
                        [{"class": c["class"], "recordings": c["recordings"], **c["ratio"]}
                         for c in classes])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(classes) + 2), 4))
    width = 0.8 / max(len(codecs), 1)
    for i, codec in enumerate(codecs):
        ax.bar([x + i * width for x in range(len(classes))],
               [c["ratio"][codec] for c in classes], width, label=codec)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(classes))],
                  [c["class"] for c in classes], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("compression ratio")
    ax.legend(fontsize=7, ncol=2)
    section.blocks += [Figure("compression_ratio", "Ratio per codec per recording class. "
                              + where, _png(fig)), ratio_table]

    # Bits per sample: per channel where the JSON has it (extra[codec]
    # ["bits_per_sample_per_channel"]), else per recording (16 x compressed / raw).
    per_channel = [(r, codec, r["extra"][codec]["bits_per_sample_per_channel"])
                   for r in data["recordings"] for codec in codecs
                   if "bits_per_sample_per_channel" in r.get("extra", {}).get(codec, {})]
    fig, ax = plt.subplots(figsize=(7, 4))
    if per_channel:
        bits_table = Table(["recording", "codec", "channel", "bits/sample"], [])
        for r, codec, bits in per_channel:
            ax.plot(range(len(bits)), bits, marker=".", label=f"{r['name']} {codec}")
            bits_table.rows += [{"recording": r["name"], "codec": codec, "channel": c,
                                 "bits/sample": float(b)} for c, b in enumerate(bits)]
        ax.set_xlabel("channel")
        caption = "Bits per sample per channel. "
    else:
        bits_table = Table(["recording", "class", "channels"] + codecs, [])
        for r in data["recordings"]:
            bits_table.rows.append({"recording": r["name"], "class": r["class"],
                                    "channels": r["channels"],
                                    **{c: 16 * r["compressed_bytes"][c] / r["raw_bytes"]
                                       for c in codecs}})
        for i, codec in enumerate(codecs):
            ax.bar([x + i * width for x in range(len(data["recordings"]))],
                   [row[codec] for row in bits_table.rows], width, label=codec)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(data["recordings"]))],
                      [r["name"] for r in data["recordings"]], rotation=60, ha="right",
                      fontsize=6)
        caption = ("Bits per sample per recording (16 × compressed / raw bytes): this JSON "
                   "has no per-channel figures (<code>extra[codec]"
                   "[\"bits_per_sample_per_channel\"]</code>, docs/report.md). ")
    ax.set_ylabel("bits per sample")
    ax.legend(fontsize=6, ncol=2)
    section.blocks += [Figure("compression_bits", caption + where, _png(fig)), bits_table]
    return section


# -- boards -----------------------------------------------------------------------------------

_LOGIC = ("ICESTORM_LC", "TRELLIS_COMB")
_BRAM = ("ICESTORM_RAM", "DP16KD")


def _used(utilization: dict[str, list[int]], names: Sequence[str]) -> tuple[int, int] | None:
    for name in names:
        if name in utilization:
            used, available = utilization[name]
            return int(used), int(available)
    return None


def boards_section(path: Path) -> Section:
    section = Section("Board builds")
    data, missing = _load_json(path, "boards", FIGURES_COMMAND)
    if data is None or not data.get("rows"):
        section.missing = missing or f"{path} holds no rows."
        return section
    plt = _pyplot()
    commit = _file_commit(Path(path))
    commands = data.get("commands", {})
    where = (f"Commands: {'; '.join(f'<code>{html.escape(c)}</code>' for c in commands.values())}"
             f" (each row's in the table); data recorded {data.get('generated', '?')}, "
             f"commit that last wrote {Path(path).name}: <code>{commit or 'not recorded'}</code>.")
    section.intro = ("Reference builds (Yosys + nextpnr), one line per board and variant; "
                     "a build that failed is in the table with its status, not plotted. "
                     + where)
    table = Table(["board", "variant", "channels", "status", "logic used", "logic available",
                   "block RAM used", "block RAM available", "Fmax MHz", "required MHz",
                   "binding", "cores", "command"], [], {"Fmax MHz": ".2f",
                                                        "required MHz": ".2f"})
    series: dict[str, list[dict[str, Any]]] = {}
    shares: list[tuple[str, dict[str, Any]]] = []
    for row in data["rows"]:
        logic = _used(row.get("utilization", {}), _LOGIC)
        bram = _used(row.get("utilization", {}), _BRAM)
        key = row["board"] + (f" + {row['variant']}" if row.get("variant") else "")
        entry = {"board": row["board"], "variant": row.get("variant") or "default",
                 "channels": row["channels"], "status": row["status"],
                 "logic used": logic[0] if logic else None,
                 "logic available": logic[1] if logic else None,
                 "block RAM used": bram[0] if bram else None,
                 "block RAM available": bram[1] if bram else None,
                 "Fmax MHz": row.get("fmax_achieved_mhz"),
                 "required MHz": row.get("fmax_required_mhz"),
                 "binding": row.get("binding", ""), "cores": ", ".join(row.get("cores", [])),
                 "command": commands.get(key, "")}
        table.rows.append(entry)
        if row["status"] == "ok":
            series.setdefault(key, []).append(entry)
        if row.get("shares"):
            shares.append((key, row))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for key, entries in series.items():
        entries.sort(key=lambda e: e["channels"])
        x = [e["channels"] for e in entries]
        for ax, column in zip(axes, ("logic used", "block RAM used", "Fmax MHz")):
            ax.plot(x, [e[column] for e in entries], marker="o", label=key)
    for ax, label in zip(axes, ("logic cells / LUTs", "block RAM", "Fmax achieved (MHz)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("channels")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    section.blocks.append(Figure("boards_resources", "Logic, block RAM and Fmax against "
                                 "channel count, builds that met their targets. " + where,
                                 _png(fig)))
    if shares:
        section.blocks += _shares_blocks(plt, shares)
    else:
        section.blocks.append(
            "<p>Per-core shares: no row of this figures file records them (make them with "
            "<code>spikeforge figures --board BOARD --channels N [--config FILE] "
            "--shares-only</code>: Yosys only, docs/report.md).</p>")
    section.blocks.append(table)
    return section


#: The share columns of a row's ``shares`` (boards/core_shares.py) and their table headings.
SHARE_COLUMNS = {"lut4": "LUT4", "carry": "carry", "ff": "FF", "bram": "block RAM",
                 "dsp": "DSP", "lutram": "LUT RAM"}
#: The columns drawn as stacked bars, and their axis labels.
_SHARE_PLOTS = (("lut4", "LUT4 per core"), ("bram", "block RAM per core"))


def _shares_blocks(plt: Any, shares: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Stacked bars of each core's share per board and variant at its recorded channel
    counts (one column of panels per board and variant), and the table they are drawn from."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for key, row in shares:
        groups.setdefault(key, []).append(row)
    cores = list(dict.fromkeys(core for _, row in shares for core in row["shares"]))
    cores.sort(key=lambda core: (core.startswith("("), core))   # "(board)" last
    colours = {core: plt.get_cmap("tab20")(i % 20) for i, core in enumerate(cores)}
    table = Table(["board", "variant", "channels", "core", *SHARE_COLUMNS.values(),
                   "command", "commit"], [])
    fig, axes = plt.subplots(len(_SHARE_PLOTS), len(groups), squeeze=False,
                             figsize=(max(6.0, 3.4 * len(groups)), 3.2 * len(_SHARE_PLOTS)))
    for column, (key, rows) in enumerate(groups.items()):
        rows = sorted(rows, key=lambda r: r["channels"])
        for row in rows:
            for core, counts in row["shares"].items():
                table.rows.append({
                    "board": row["board"], "variant": row.get("variant") or "default",
                    "channels": row["channels"], "core": core,
                    **{heading: counts.get(name) for name, heading in SHARE_COLUMNS.items()},
                    "command": row.get("shares_command", ""),
                    "commit": row.get("shares_commit", "")})
        labels = [str(r["channels"]) for r in rows]
        for line, (name, ylabel) in enumerate(_SHARE_PLOTS):
            ax = axes[line][column]
            bottoms = [0] * len(rows)
            for core in cores:
                values = [r["shares"].get(core, {}).get(name, 0) for r in rows]
                if any(values):
                    ax.bar(labels, values, bottom=bottoms, color=colours[core], label=core)
                bottoms = [b + v for b, v in zip(bottoms, values)]
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("channels")
            ax.set_ylabel(ylabel)
    handles = {core: plt.Rectangle((0, 0), 1, 1, color=colours[core]) for core in cores}
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="center left",
               bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    commands = list(dict.fromkeys(r.get("shares_command") or "not recorded" for _, r in shares))
    commits = list(dict.fromkeys(r.get("shares_commit") or "not recorded" for _, r in shares))
    where = (f"Commands: {'; '.join(f'<code>{html.escape(c)}</code>' for c in commands)}; "
             f"commit of the synthesised sources: "
             f"{', '.join(f'<code>{html.escape(c)}</code>' for c in commits)} (each row's in "
             "the table).")
    caption = ("Each core's share of the build, per board and variant at its recorded channel "
               "counts: the board's own netlist synthesised by Yosys with the system's cores "
               "kept as hierarchy (no place and route; boundaries not optimised across, so the "
               "sum is a little above the placed build's). <em>(board)</em> is everything "
               "outside the cores: pins, clocks, resets, PHY adapters. " + where)
    return [Figure("boards_core_shares", caption, _png(fig)),
            "<p>Per-core shares (Yosys cells; <em>carry</em>: ECP5 CCU2C = two LUT4s, iCE40 "
            "SB_CARRY; <em>LUT RAM</em>: ECP5 TRELLIS_DPR16X4):</p>", table]


# -- link budget ------------------------------------------------------------------------------

def budget_section(channels: Sequence[int] = BUDGET_CHANNELS,
                   links: Sequence[tuple[str, str, float | None]] = BUDGET_LINKS) -> Section:
    from spikeforge.host.budget import StreamDescription, budget

    plt = _pyplot()
    section = Section("Link budget")
    commit = git_commit()
    where = _provenance("spikeforge report (spikeforge.host.budget.budget; one row: "
                        "spikeforge budget --channels N --link-bps RATE)", commit)
    section.intro = (f"Which bandwidth mode fits which link, at {BUDGET_RATE_HZ // 1000} kS/s, "
                     "the detector on, the budget's default spike rate and compression "
                     "ratio (host/budget.py). Load = link bits needed / link rate; a mode "
                     "fits at load ≤ 1. " + where)
    max_table = Table(["link", "mode", "max channels"], [])
    load_table = Table(["link", "mode", *[str(n) for n in channels]], [],
                       {str(n): ".3f" for n in channels})
    fig, axes = plt.subplots(1, len(links), figsize=(4.6 * len(links), 4), sharey=True)
    for ax, (label, link, rate) in zip(axes, links):
        results = [budget(StreamDescription(channels=n, sample_rate_hz=BUDGET_RATE_HZ),
                          rate, link=link) for n in channels]
        for mode in [m.mode for m in results[0].modes]:
            loads = [r.mode(mode).load if r.mode(mode).available else None for r in results]
            load_table.rows.append({"link": label, "mode": mode,
                                    **{str(n): v for n, v in zip(channels, loads)}})
            max_table.rows.append({"link": label, "mode": mode,
                                   "max channels": results[-1].mode(mode).max_channels})
            ax.plot(channels, [math.nan if v is None else v for v in loads], marker=".",
                    label=mode)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("channels")
    axes[0].set_ylabel("link load (fits below 1)")
    axes[0].legend(fontsize=7)
    section.blocks += [Figure("budget_load", "Link load per bandwidth mode against channel "
                              "count, per link. " + where, _png(fig)),
                       "<p>Most channels that fit, per link and mode:</p>", max_table,
                       "<p>Load per channel count:</p>", load_table]
    return section


# -- the page ---------------------------------------------------------------------------------

_STYLE = """body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}
td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}th{background:#eee}
td:first-child{text-align:left}figure{margin:1em 0}figcaption{font-size:12px;color:#333}
.missing{background:#fff3cd;border:1px solid #e0c36a;padding:.5em 1em}img{max-width:100%}"""


def render(sections: list[Section], out: Path, title: str = "spikeforge evaluation report"
           ) -> str:
    """The HTML page; writes each figure's PNG into ``out`` (also embedded in the page)."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{title}</h1>",
             f"<p>Written by <code>spikeforge report</code> at commit "
             f"<code>{git_commit() or 'unknown'}</code>. Sections: "
             + ", ".join(f"<a href='#s{i}'>{html.escape(s.title)}</a>"
                         + (" (missing)" if s.missing else "")
                         for i, s in enumerate(sections)) + ".</p>"]
    for i, s in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(s.title)}</h2>")
        if s.missing:
            parts.append(f"<p class='missing'>{s.missing}</p>")
            continue
        if s.intro:
            parts.append(f"<p>{s.intro}</p>")
        for block in s.blocks:
            if isinstance(block, Figure):
                (out / f"{block.name}.png").write_bytes(block.png)
                data = base64.b64encode(block.png).decode()
                parts.append(f"<figure><img alt='{block.name}' src='data:image/png;base64,"
                             f"{data}'><figcaption>{block.caption} "
                             f"(<a href='{block.name}.png'>{block.name}.png</a>)</figcaption>"
                             "</figure>")
            elif isinstance(block, Table):
                parts.append(block.to_html())
            else:
                parts.append(block)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out: Path, *, detect: Path = DEFAULT_DETECT_JSON,
                 compress: Path = DEFAULT_COMPRESS_JSON, figures: Path | None = None,
                 progress: Callable[[str], None] = print) -> tuple[Path, list[Section]]:
    """Write ``out/index.html`` and the PNGs; returns the page's path and the sections."""
    if figures is None:
        from spikeforge.boards.figures import FIGURES_FILE

        figures = FIGURES_FILE
    _pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for make in (lambda: detection_section(Path(detect)),
                 lambda: compression_section(Path(compress)),
                 lambda: boards_section(Path(figures)), budget_section):
        section = make()
        progress(f"  {section.title}: " + ("missing" if section.missing else "done"))
        sections.append(section)
    page = out / "index.html"
    page.write_text(render(sections, out))
    return page, sections
