"""Each core's share of a board build (boards/core_shares.py): Yosys' per-module statistics
become per-core counts, and backfilling the record only adds keys to the rows asked for."""

import json

import pytest

from spikeforge.boards import core_shares as cs
from spikeforge.boards.core_shares import BOARD, backfill, parse_stat, shares_from_stat
from spikeforge.boards.figures import load_figures, reference_config

# The shape of `stat -json` after a synthesis with the cores kept (trimmed).
_STAT = "Yosys says hello\n" + json.dumps({
    "creator": "Yosys",
    "modules": {
        "\\top": {"num_cells_by_type": {"LUT4": 10, "TRELLIS_FF": 7, "EHXPLLL": 1,
                                        "$scopeinfo": 3, "top.system.framer": 1}},
        "\\top.system.framer": {"num_cells_by_type": {"LUT4": 500, "CCU2C": 40, "DP16KD": 3,
                                                      "TRELLIS_FF": 200, "PFUMX": 9}},
        "\\top.system.uart_rx$140": {"num_cells_by_type": {"LUT4": 30, "TRELLIS_FF": 20}},
        "\\top.system.detector": {"num_cells_by_type": {"LUT4": 900, "MULT18X18D": 2,
                                                        "TRELLIS_DPR16X4": 4,
                                                        "TRELLIS_FF": 300}},
    },
    "design": {"num_cells": 2000},
})


def test_per_module_statistics_become_per_core_counts():
    modules = parse_stat(_STAT)
    assert modules["top.system.framer"]["CCU2C"] == 40
    shares = shares_from_stat(modules, "ecp5")
    assert list(shares) == ["detector", "framer", "uart_rx", BOARD]   # "$140" dropped
    assert shares["framer"] == {"lut4": 500, "carry": 40, "ff": 200, "bram": 3, "dsp": 0,
                                "lutram": 0}
    assert shares["detector"]["dsp"] == 2 and shares["detector"]["lutram"] == 4
    assert shares[BOARD] == {"lut4": 10, "carry": 0, "ff": 7, "bram": 0, "dsp": 0,
                             "lutram": 0}


def test_ice40_flip_flops_of_every_kind_are_counted():
    modules = {"top.system.source": {"SB_LUT4": 5, "SB_DFF": 2, "SB_DFFE": 3, "SB_DFFSR": 1,
                                     "SB_MAC16": 1, "SB_RAM40_4K": 2, "SB_CARRY": 4}}
    assert shares_from_stat(modules, "ice40")["source"] == {
        "lut4": 5, "carry": 4, "ff": 6, "bram": 2, "dsp": 1, "lutram": 0}


def test_backfill_only_adds_shares_to_the_rows_asked_for(tmp_path, monkeypatch):
    config = reference_config("icebreaker", 16).to_dict()
    rows = [{"board": "icebreaker", "channels": n, "variant": v, "status": "ok",
             "config": config if n == 16 else {}, "cores": ["framer"]}
            for n, v in ((16, ""), (16, "full"), (512, ""))]
    path = tmp_path / "figures.json"
    path.write_text(json.dumps({"commands": {"icebreaker": "x"}, "rows": rows}, indent=1,
                               sort_keys=True) + "\n")
    before = json.loads(path.read_text())
    asked = []
    monkeypatch.setattr(cs, "core_shares", lambda board, config, build_dir: asked.append(
        (board, config.channels)) or {"framer": {"lut4": 1}})
    monkeypatch.setattr(cs, "source_commit", lambda: "abc1234")
    assert backfill(path, boards=["icebreaker"], variant="", command="the command") == 1
    assert asked == [("icebreaker", 16)]
    after = json.loads(path.read_text())
    first = after["rows"][0]
    assert first.pop("shares") == {"framer": {"lut4": 1}}
    assert first.pop("shares_command") == "the command"
    assert first.pop("shares_commit") == "abc1234"
    assert after == before            # nothing else changed: new keys only
    # rows that have shares are skipped unless redone; the record still loads as FigureRows
    assert backfill(path, variant="", command="again") == 0
    row = load_figures(path)["rows"][0]
    assert row.shares == {"framer": {"lut4": 1}} and row.shares_commit == "abc1234"


@pytest.mark.slow
def test_the_shares_add_up_to_the_recorded_ice40_build(tmp_path):
    """Real Yosys (~10 s): the iCEBreaker's 16-channel build. Block RAM and DSP are mapped
    the same with or without the kept boundaries; flip-flops nearly so."""
    recorded = next(r for r in load_figures()["rows"]
                    if (r.board, r.channels, r.variant, r.status) == ("icebreaker", 16, "",
                                                                      "ok"))
    shares = cs.core_shares("icebreaker", reference_config("icebreaker", 16), tmp_path)
    assert set(recorded.cores) <= set(shares) and BOARD in shares
    total = {name: sum(core[name] for core in shares.values()) for name in shares[BOARD]}
    assert total["bram"] == recorded.utilization["ICESTORM_RAM"][0]
    assert total["dsp"] == recorded.utilization["ICESTORM_DSP"][0]
    assert abs(total["ff"] - recorded.flip_flops) <= 0.05 * recorded.flip_flops
    assert shares["framer"]["bram"] >= 1 and shares["uart"]["bram"] == 0
    # cached by the build's digest: the second call runs no Yosys
    assert list(tmp_path.glob("icebreaker/*.shares.json"))
    assert cs.core_shares("icebreaker", reference_config("icebreaker", 16), tmp_path) == shares
