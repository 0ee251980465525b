"""`spikeforge budget` knows the Gigabit link: 1024 raw channels at 30 kS/s fit it."""

import json

from spikeforge.cli import main


def _budget(capsys, *argv: str) -> dict:
    assert main(["budget", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{"):])


def _row(result: dict, mode: str) -> dict:
    return next(row for row in result["modes"] if row["mode"] == mode)


def test_1024_raw_channels_fit_the_gigabit_link_with_their_load_shown(capsys):
    result = _budget(capsys, "--channels", "1024", "--link", "ethernet")
    raw = _row(result, "raw")
    assert raw["fits"] is True
    assert 0.45 < raw["load"] < 0.6


def test_an_ethernet_board_is_budgeted_on_its_own_link(capsys):
    raw = _row(_budget(capsys, "--board", "butterstick"), "raw")
    assert raw["fits"] is True and raw["load"] < 0.6


def test_the_same_stream_does_not_fit_a_uart(capsys):
    raw = _row(_budget(capsys, "--channels", "1024", "--link", "uart"), "raw")
    assert raw["fits"] is False


def test_a_v2_build_bounds_the_worst_case_within_one_percent(capsys):
    """A configuration with codec_v2 is budgeted with v2's running budget: 1024 channels of
    16-sweep blocks expand by at most 0.03 %, where v1's worst case nearly doubles."""
    args = ("--board", "butterstick", "--channels", "1024", "--block-sweeps", "16")
    v2 = _budget(capsys, *args, "--config", "boards/full-v2.json")
    v1 = _budget(capsys, *args)
    raw = _row(v2, "raw")["payload_bytes_per_s"]
    worst_v2 = _row(v2, "lossless (worst case)")
    assert worst_v2["fits"] is True
    assert raw < worst_v2["payload_bytes_per_s"] < 1.0005 * raw
    assert "ratio 0.999" in worst_v2["note"]
    assert _row(v1, "lossless (worst case)")["payload_bytes_per_s"] > 1.5 * raw
