"""spikeforge report: the page's numbers are the JSON's numbers; missing inputs are named."""

import json
from html.parser import HTMLParser

import pytest

pytest.importorskip("matplotlib")

from spikeforge.cli import main  # noqa: E402
from spikeforge.sim import compression_bench as cb  # noqa: E402
from spikeforge.sim.accuracy import METHOD_LABELS, METHODS, Row, Score, UnitScore, to_json  # noqa: E402
from spikeforge.sim.report import BUDGET_LINKS, write_report  # noqa: E402


class _Tables(HTMLParser):
    """Every <table> of a page as (header cells, body rows of cells)."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._row = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr":
            head, body = self.tables[-1]
            if not head:
                head.extend(self._row)
            else:
                body.append(dict(zip(head, self._row)))


def _tables(page):
    parser = _Tables()
    parser.feed(page.read_text())
    return parser.tables


def _table(tables, *columns):
    matches = [body for head, body in tables if all(c in head for c in columns)]
    assert len(matches) == 1, columns
    return matches[0]


def _unit(hits, spikes, detected, duplicates):
    return UnitScore(detected, sum(hits), duplicates, 0, tuple(spikes), tuple(hits))


def _detect_json(tmp_path):
    rows = []
    for i, rate in enumerate((20_000, 30_000)):
        units = {m: _unit((10 - j - i, 7 + j), (12, 9), 40 + 7 * j, j + i)
                 for j, m in enumerate(METHODS)}
        rows.append(Row(f"rec{i}", rate, 4, 1.0, Score(30, 21, 29, 19), Score(20, 21, 20, 17),
                        Score(22, 21, 21, 18), Score(40, 21, 30, 20), 15.0, (18.0, 23), units,
                        (3.5 + i, 11.0), (0, 2), "4x2@15", ((17, 5), (18, 9 + i), (23, 1))))
    data = to_json(rows, {"command": "spikeforge bench detect --test", "commit": "abc123"})
    path = tmp_path / "detect.json"
    path.write_text(json.dumps(data))
    return path, data


def _compress_json(tmp_path):
    def result(name, kind, sizes):
        return cb.RecordingResult(name, kind, 4, 1000, 30_000, 8000, {
            codec: cb.CodecResult(codec, size, 0.01, 0.02) for codec, size in sizes.items()})

    rows = [result("a", "class1", {"coder": 4000, "zstd-19": 5000}),
            result("b", "class1", {"coder": 3000, "zstd-19": 3900}),
            result("c", "class2", {"coder": 7000, "zstd-19": 6000})]
    data = cb.to_json(rows, {"command": "spikeforge bench compress --test"})
    path = tmp_path / "compress.json"
    path.write_text(json.dumps(data))
    return path, data


def _figures_json(tmp_path):
    rows = [{"board": "icebreaker", "channels": n, "status": "ok", "variant": "",
             "utilization": {"ICESTORM_LC": [2000 + n, 5280], "ICESTORM_RAM": [4 + n // 16, 30]},
             "fmax_achieved_mhz": 14.0 + n / 100, "fmax_required_mhz": 12.0,
             "binding": "Fmax", "cores": ["source", "framer"]} for n in (16, 64)]
    for row in rows:    # each core's share, as boards/core_shares.py records it
        n = row["channels"]
        row.update(shares={
            "framer": {"lut4": 700 + n, "carry": 260, "ff": 370, "bram": 4 + n // 16, "dsp": 0,
                       "lutram": 0},
            "source": {"lut4": 280, "carry": 150, "ff": 115 + n, "bram": 1, "dsp": 1,
                       "lutram": 0},
            "(board)": {"lut4": 83, "carry": 25, "ff": 63, "bram": 0, "dsp": 0, "lutram": 0}},
            shares_command="spikeforge figures --board icebreaker --shares-only",
            shares_commit="def456")
    rows.append({"board": "icebreaker", "channels": 512, "status": "does not fit",
                 "variant": "", "utilization": {}, "binding": "ICESTORM_LC", "cores": []})
    data = {"commands": {"icebreaker": "spikeforge figures --board icebreaker"},
            "generated": "2026-12-05", "rows": rows}
    path = tmp_path / "figures.json"
    path.write_text(json.dumps(data))
    return path, data


def test_the_reports_tables_hold_the_jsons_numbers(tmp_path):
    detect, detect_data = _detect_json(tmp_path)
    compress, compress_data = _compress_json(tmp_path)
    figures, figures_data = _figures_json(tmp_path)
    out = tmp_path / "report"
    page, sections = write_report(out, detect=detect, compress=compress, figures=figures,
                                  progress=lambda line: None)
    assert not any(s.missing for s in sections)
    tables = _tables(page)

    # detection: F1 per method and recording, ours' P / R / duplicates, the earlier F1
    body = _table(tables, "recording", "F1 ours")
    assert [r["recording"] for r in body] == ["rec0", "rec1"]
    for row, rec in zip(body, detect_data["recordings"]):
        for m in METHODS:
            assert float(row[f"F1 {METHOD_LABELS[m]}"]) == round(rec["unit_score"][m]["f1"], 3)
        ours = rec["unit_score"]["ours"]
        assert float(row["P ours"]) == round(ours["precision"], 3)
        assert float(row["R ours"]) == round(ours["recall"], 3)
        assert int(row["duplicates ours"]) == ours["duplicates"]
        assert float(row["any-channel F1 ours"]) == round(
            rec["any_channel_score"]["ours"]["f1"], 3)
    # recall against SNR: unit 0 (SNR 3.5 and 4.5) in two bins, unit 1 (11) in 8-12
    snr = {r["unit SNR"]: r for r in _table(tables, "unit SNR")}
    recs = detect_data["recordings"]
    assert int(snr["8-12"]["spikes"]) == 18 and int(snr["8-12"]["units"]) == 2
    found = sum(r["unit_score"]["ours"]["unit_hits"][1] for r in recs)
    assert float(snr["8-12"]["ours"]) == round(found / 18, 3)
    assert float(snr["3-4"]["ours"]) == round(recs[0]["unit_score"]["ours"]["unit_hits"][0]
                                              / 12, 3)
    latency = {int(r["rate_hz"]): r for r in _table(tables, "median samples")}
    assert int(latency[30_000]["events"]) == 5 + 10 + 1
    assert int(latency[30_000]["max samples"]) == 23

    # compression: ratio per codec per class
    classes = {r["class"]: r for r in _table(tables, "class", "recordings")}
    for c in compress_data["classes"]:
        for codec, ratio in c["ratio"].items():
            assert float(classes[c["class"]][codec]) == round(ratio, 3)
    bits = {r["recording"]: r for r in _table(tables, "recording", "class", "channels")}
    assert float(bits["c"]["coder"]) == round(16 * 7000 / 8000, 3)

    # boards: one row per build, the failed one too
    boards = _table(tables, "board", "logic used")
    assert [(r["channels"], r["status"]) for r in boards] == [
        ("16", "ok"), ("64", "ok"), ("512", "does not fit")]
    assert int(boards[1]["logic used"]) == 2064 and int(boards[1]["block RAM used"]) == 8
    assert float(boards[1]["Fmax MHz"]) == 14.64 and boards[2]["logic used"] == "–"

    # boards: each core's share of each build that records one, every column
    from spikeforge.sim.report import SHARE_COLUMNS

    shares = _table(tables, "core", "LUT4")
    expected_shares = [(row, core, counts) for row in figures_data["rows"]
                       for core, counts in row.get("shares", {}).items()]
    assert len(shares) == len(expected_shares) == 6
    for got, (row, core, counts) in zip(shares, expected_shares):
        assert (int(got["channels"]), got["core"]) == (row["channels"], core)
        for name, heading in SHARE_COLUMNS.items():
            assert int(got[heading]) == counts[name], (core, name)
        assert got["commit"] == "def456"

    # link budget: the calculator's numbers
    from spikeforge.host.budget import StreamDescription, budget

    loads = _table(tables, "link", "mode", "1024")
    label, link, rate = BUDGET_LINKS[0]
    expected = budget(StreamDescription(channels=64, sample_rate_hz=30_000), rate, link=link)
    raw = next(r for r in loads if r["link"] == label and r["mode"] == "raw")
    assert float(raw["64"]) == round(expected.mode("raw").load, 3)

    # the figures exist as files and in the page, each naming its command and commit
    text = page.read_text()
    for name in ("detection_f1", "detection_recall_snr", "detection_latency",
                 "compression_ratio", "compression_bits", "boards_resources",
                 "boards_core_shares", "budget_load"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"alt='{name}'" in text
    assert text.count("spikeforge bench detect --test") >= 3 and "abc123" in text
    assert "spikeforge bench compress --test" in text
    assert "spikeforge figures --board icebreaker" in text
    caption = text[text.index("alt='boards_core_shares'"):]
    caption = caption[:caption.index("</figcaption>")]
    assert "spikeforge figures --board icebreaker --shares-only" in caption
    assert "def456" in caption


def test_missing_inputs_are_named_with_the_command_that_makes_them(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--detect", str(tmp_path / "none.json"),
                 "--compress", str(broken), "--figures", str(tmp_path / "nofig.json")]) == 0
    printed = capsys.readouterr().out
    assert "spikeforge bench detect --json" in printed and "none.json does not exist" in printed
    assert "broken.json cannot be read as JSON" in printed
    assert "spikeforge figures" in printed
    page = (out / "index.html").read_text()
    assert "The detection section is missing" in page
    assert "The compression section is missing" in page
    assert "The boards section is missing" in page
    assert "Traceback" not in page
    assert (out / "budget_load.png").exists()      # the budget needs no input
