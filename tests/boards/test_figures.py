"""The figures command's bookkeeping without synthesis: reference configurations, the
record, the table, the docs section, and ``spikeforge boards`` reading the record."""

import itertools
import json

import pytest

from spikeforge.boards import BOARDS, get_board
from spikeforge.boards.figures import (
    DOCS_BEGIN,
    DOCS_END,
    NOT_BUILT,
    REFERENCE_CHANNELS,
    REFERENCE_RATE_HZ,
    TOO_SLOW,
    FigureRow,
    figure_for,
    load_figures,
    max_channels,
    reference_config,
    render_table,
    run_figures,
    save_figures,
    system_cores,
    update_docs,
)
from spikeforge.cli import main
from spikeforge.firmware.errors import ConfigError


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_reference_configs_validate_at_every_count_the_clock_can_serve(name):
    board = get_board(name)
    for channels in REFERENCE_CHANNELS:
        if channels + 1 > board.clock_hz // REFERENCE_RATE_HZ:
            with pytest.raises(ConfigError, match="cycles per sample period"):
                reference_config(board, channels)
            continue
        config = reference_config(board, channels)
        assert config.channels == channels
        assert config.sample_rate_hz == REFERENCE_RATE_HZ
        assert config.clock_hz == board.clock_hz and config.baud == board.default_config.baud
        assert config.link_buffer_samples >= 2 * config.frame_samples
        assert config.link_buffer_samples < 4 * config.frame_samples  # next power of two
        board.check_config(config)


def test_large_reference_configs_send_one_sweep_per_frame():
    config = reference_config("ulx3s-85f", 1024)
    assert config.sweeps_per_frame == 1
    assert config.link_buffer_samples == 2048


def test_reference_configs_lay_overrides_over_the_board_default():
    config = reference_config("icebreaker", 64, {"identity_interval_frames": 7})
    assert config.identity_interval_frames == 7
    assert config.baud == get_board("icebreaker").default_config.baud  # kept


def test_the_figures_list_the_cores_the_system_elaborates_to():
    cores = system_cores(reference_config("icebreaker", 16))
    assert {"source", "framer", "uart"} <= set(cores)


def test_a_count_the_clock_cannot_serve_is_a_figure_not_an_error(tmp_path):
    row = figure_for("icebreaker", 512, tmp_path)
    assert row.status == "sample period too short"
    assert row.binding == "cycles per sample"
    assert "399" in row.message  # the largest count a 12 MHz clock serves at 30 kS/s


def test_counts_above_the_first_failure_are_not_built(tmp_path):
    rows = run_figures(["icebreaker"], [512, 1024], build_dir=tmp_path, clock_limit=False)
    assert [r.status for r in rows] == ["sample period too short", "not built"]


def test_rows_not_built_belong_to_the_variant_asked_for(tmp_path):
    """A variant's failure must not overwrite the default rows of the same counts."""
    rows = run_figures(["icebreaker"], [512, 1024], build_dir=tmp_path, clock_limit=False,
                       overrides={"detector": {"enabled": True}})
    assert [(r.status, r.variant) for r in rows] == [
        ("sample period too short", "detection"), ("not built", "detection")]


def test_the_clock_limit_is_a_candidate_count(tmp_path, monkeypatch):
    from spikeforge.boards import figures

    built = []
    monkeypatch.setattr(figures, "figure_for", lambda board, count, *a, **k: built.append(
        count) or FigureRow(board, count, "ok"))
    run_figures(["icebreaker", "ulx3s-12f"], [256, 512], build_dir=tmp_path)
    assert built == [256, 399, 512, 256, 512]  # 12 MHz / 30 kS/s - 1 = 399


def _rows():
    util = {"ICESTORM_LC": [1300, 5280], "ICESTORM_RAM": [8, 30], "ICESTORM_SPRAM": [0, 4],
            "ICESTORM_DSP": [0, 8]}
    return [
        FigureRow("icebreaker", 16, "ok", utilization=util, flip_flops=500,
                  fmax_achieved_mhz=16.4, fmax_required_mhz=12.0, binding="Fmax"),
        FigureRow("icebreaker", 256, "ok", utilization=util, flip_flops=520,
                  fmax_achieved_mhz=15.1, fmax_required_mhz=12.0, binding="Fmax"),
        FigureRow("icebreaker", 512, "sample period too short", binding="cycles per sample",
                  message="too many channels"),
        FigureRow("ulx3s-85f", 1024, "timing not met",
                  utilization={"TRELLIS_COMB": [1500, 83640], "TRELLIS_FF": [600, 83640],
                               "DP16KD": [5, 208], "MULT18X18D": [1, 156]},
                  fmax_achieved_mhz=44.0, fmax_required_mhz=45.0, binding="Fmax",
                  message="too slow"),
    ]


def test_the_largest_fitting_configuration_comes_from_the_rows():
    rows = _rows()
    assert max_channels(rows, "icebreaker").channels == 256
    assert max_channels(rows, "ulx3s-85f") is None
    assert max_channels(rows, "ulx3s-12f") is None


def test_the_table_has_every_column_and_names_what_binds():
    table = render_table(_rows())
    header = table.splitlines()[0]
    for column in ("logic", "flip-flops", "block RAM", "SPRAM", "DSP", "Fmax"):
        assert column in header
    assert "| icebreaker | 256 | 1300/5280 (25%) | 520 | 8/30 (27%) |" in table
    assert "44.0 / 45.0" in table
    assert "at most **256 channels**" in table
    assert "512 channels fail: sample period too short (cycles per sample)" in table
    assert "**ulx3s-85f**: no reference configuration fits and meets timing" in table


def test_the_record_merges_by_board_and_count(tmp_path):
    path = tmp_path / "figures.json"
    rows = _rows()
    save_figures(rows[:2], command="spikeforge figures --board icebreaker", toolchain="t",
                 path=path)
    newer = FigureRow("icebreaker", 16, "does not fit", binding="ICESTORM_RAM")
    save_figures([newer, rows[3]], command="spikeforge figures", toolchain="t", path=path)
    record = load_figures(path)
    by_key = {(r.board, r.channels): r for r in record["rows"]}
    assert set(by_key) == {("icebreaker", 16), ("icebreaker", 256), ("ulx3s-85f", 1024)}
    assert by_key[("icebreaker", 16)].status == "does not fit"
    assert json.loads(path.read_text())["commands"]["ulx3s-85f"] == "spikeforge figures"


def test_the_docs_section_is_replaced_between_its_markers(tmp_path):
    doc = tmp_path / "boards.md"
    doc.write_text("# Boards\n\nintro\n")
    update_docs(doc, _rows(), "spikeforge figures")
    update_docs(doc, _rows()[:1], "spikeforge figures --board icebreaker")
    text = doc.read_text()
    assert text.count(DOCS_BEGIN) == 1 and text.count(DOCS_END) == 1
    assert "Produced by `spikeforge figures --board icebreaker`" in text
    assert "| icebreaker | 256 |" not in text
    assert text.startswith("# Boards\n\nintro\n")


def test_spikeforge_boards_lists_every_board_with_fpga_link_and_largest_config(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for board in BOARDS.values():
        assert board.name in out and board.fpga in out and board.link_description in out
    assert "4 Mbaud" in out and "3 Mbaud" in out
    record = load_figures()
    for board in BOARDS:
        best = max_channels(record["rows"], board)
        if best is not None:
            assert f"{best.channels} channels" in out
    # Each recorded variant (more cores) has its own line under its board.
    lines = out.splitlines()
    for board, variant in {(r.board, r.variant) for r in record["rows"] if r.variant}:
        start = next(i for i, line in enumerate(lines) if line.startswith(board)) + 1
        under = itertools.takewhile(lambda line: line.startswith(" "), lines[start:])
        line = next((line for line in under if f"+ {variant} " in line), None)
        assert line is not None, f"no line for {board} + {variant}:\n{out}"
        best = max_channels(record["rows"], board, variant)
        assert (f"{best.channels} channels" in line if best
                else "none of the reference configurations" in line), line


def test_an_unknown_board_in_figures_lists_the_known_ones(capsys):
    assert main(["figures", "--board", "icebraker", "--no-record"]) == 2
    assert "known boards: icebreaker" in capsys.readouterr().err


def test_ice40_flip_flops_come_from_the_last_yosys_statistics(tmp_path):
    from types import SimpleNamespace

    from spikeforge.boards.build import Utilization
    from spikeforge.boards.figures import _flip_flops

    (tmp_path / "top.rpt").write_text(
        "2.10. Printing statistics.\n       99   SB_DFF\n"
        "2.50. Printing statistics.\n      398   SB_CARRY\n       55   SB_DFF\n"
        "       29   SB_DFFE\n      311   SB_DFFESR\n     1069   SB_LUT4\n"
        "=== design hierarchy ===\n       55   SB_DFF\n")
    ice40 = SimpleNamespace(utilization={"ICESTORM_LC": Utilization(1286, 5280)},
                            directory=tmp_path)
    assert _flip_flops(ice40) == 55 + 29 + 311
    ecp5 = SimpleNamespace(utilization={"TRELLIS_FF": Utilization(488, 83640)},
                           directory=tmp_path / "none")
    assert _flip_flops(ecp5) == 488


#: (board, variant) -> the growth allowed from the smallest to the largest recorded count,
#: where it is more than 15 %. The ECP5's default build grows 2 527 -> 3 173 LUT4s (26 %)
#: from 16 to 1024 channels since the run-time channel mask (2 195 -> 2 256 before it). The
#: cause is located (`python -m spikeforge.sim.control_cost --other-cores --channels N`,
#: docs/boards.md): the mask's words (32 of them at 1024 channels, one memory per read port)
#: and its two popcounts, the register bank's mask registers, sized by the channel count, and
#: the framer's frame-slot FIFO. The bound keeps any further growth from passing unseen.
GROWTH_ALLOWED = {
    ("ulx3s-85f", ""): 1.30,
    ("ulx3s-12f", ""): 1.30,
    ("ulx3s-45f", ""): 1.30,
}


def _recorded_board_variants() -> list[tuple[str, str]]:
    rows = load_figures()["rows"]
    return sorted({(r.board, r.variant) for r in rows if r.ok} | {(b, "") for b in BOARDS})


@pytest.mark.parametrize(("board", "variant"), _recorded_board_variants(),
                         ids=lambda value: value or "default")
def test_the_recorded_logic_is_nearly_flat_in_the_channel_count(board, variant):
    """Channel-serial cores: logic may grow by the counters' and addresses' bits, not with
    the channels (memory grows instead). Checks the committed record, so regenerating the
    figures after a core that breaks this fails CI. Rows that were placed and routed count
    whether or not they meet timing (their logic is measured). A board with fewer than two
    such rows whose every built row misses timing is skipped, saying so and with the
    measured Fmax; a board with fewer than two rows for any other reason fails."""
    all_rows = [r for r in load_figures()["rows"] if r.board == board and r.variant == variant]
    # A row that was placed and routed but misses timing still measures its logic.
    rows = [r for r in all_rows if r.ok or (r.status == TOO_SLOW and r.utilization)]
    # One variant at a time: enabling a core adds logic, more channels must not.
    logic = {r.channels: r.used("logic")[0] for r in rows}
    if variant and len(logic) < 2:
        pytest.skip(f"{board} {variant}: {len(logic)} passing row(s), nothing to compare")
    built = [r for r in all_rows if r.status != NOT_BUILT]
    if len(logic) < 2 and built and all(r.status == TOO_SLOW for r in built):
        misses = ", ".join(f"{r.channels} ch: {r.message or r.binding}" for r in built)
        pytest.skip(f"{board}: every built row misses timing ({misses}); "
                    f"{len(logic)} passing row(s), fewer than the two the check needs")
    assert len(logic) >= 2, f"too few recorded figures for {board}"
    smallest, largest = logic[min(logic)], logic[max(logic)]
    allowed = GROWTH_ALLOWED.get((board, variant), 1.15)
    assert largest <= allowed * smallest, (
        f"{board}: {largest} logic cells at {max(logic)} channels vs {smallest} at "
        f"{min(logic)}: logic grows with the channel count")


def test_detection_rows_are_kept_apart_from_the_default_rows(tmp_path):
    from spikeforge.boards.figures import DETECTION

    path = tmp_path / "figures.json"
    plain = FigureRow("icebreaker", 16, "ok")
    detection = FigureRow("icebreaker", 16, "ok", variant=DETECTION)
    save_figures([plain], command="a", toolchain="t", path=path)
    record = save_figures([detection], command="b", toolchain="t", path=path)
    assert [(r.channels, r.variant) for r in record["rows"]] == [(16, ""), (16, DETECTION)]
    assert max_channels(record["rows"], "icebreaker").variant == ""
    assert max_channels(record["rows"], "icebreaker", DETECTION).variant == DETECTION
    assert "icebreaker + detection" in render_table(record["rows"])


@pytest.mark.parametrize("channels", [16, 256, 1024])
def test_full_reference_configs_enable_every_core_and_hold_two_worst_case_blocks(channels):
    from pathlib import Path

    from spikeforge.boards.figures import FULL, REFERENCE_BLOCK_SAMPLES, variant_of
    from spikeforge.firmware.compression import worst_case_words
    from spikeforge.hdl.framer import coded_buffer_words

    full = json.loads((Path(__file__).parents[2] / "boards" / "full.json").read_text())
    config = reference_config("ulx3s-85f", channels, full)
    assert config.detector.enabled and config.codec.enabled and not config.codec.codebook
    assert config.codec.predictor == full["codec"]["predictor"]
    assert variant_of(config) == FULL
    assert config.codec.block_sweeps == min(full["codec"]["block_sweeps"],
                                            REFERENCE_BLOCK_SAMPLES // channels)
    worst = worst_case_words(channels, config.codec.block_sweeps, config.codec)
    assert 2 * worst <= coded_buffer_words(config) < 4 * worst + 2 * config.frame_samples
    assert {"conditioner", "detector", "compressor"} <= set(system_cores(config))
