"""`spikeforge`: one module per command family, each registering its own commands; one
table of exit codes; one DeviceError family; sim:// URLs handled in one place; option
defaults taken from the dataclasses and constants they mirror."""

import argparse
import ast
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import spikeforge
from spikeforge.cli import FAMILIES, build_parser, main
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.decimation import DecimatorConfig
from spikeforge.firmware.detection import DetectorConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.host.errors import DeviceError, DeviceNotFound, ExitCode, exit_code_of

COMMANDS = {"sim", "sim-board", "build", "flash", "boards", "figures", "decode", "record",
            "status", "export", "learn-prior", "bench", "budget", "config", "key", "stream",
            "report", "decrypt"}
PACKAGE_ROOT = Path(spikeforge.__file__).parent.parent


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_family_registers_its_own_commands_and_together_they_are_the_cli():
    seen: set[str] = set()
    for family in FAMILIES:
        parser = argparse.ArgumentParser()
        family.register(parser.add_subparsers())
        names = set(_subparsers(parser))
        assert names and not names & seen, f"{family.__name__} registers {names}"
        seen |= names
    assert seen == COMMANDS == set(_subparsers(build_parser()))


@pytest.mark.parametrize("command", sorted(COMMANDS) + ["bench detect", "bench compress",
                                                        "bench decimator", "bench link"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command.split(), "--help"])
    assert info.value.code == 0
    assert "usage: spikeforge " + command in capsys.readouterr().out


def test_python_dash_m_runs_the_same_cli_without_loading_amaranth():
    code = ("import runpy, sys; sys.argv = ['spikeforge', 'config', '--channels', '8']\n"
            "try:\n    runpy.run_module('spikeforge.cli', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'amaranth'], 'amaranth'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert '"channels": 8' in result.stdout


def _closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_device_error_exits_with_the_device_code(capsys):
    port = _closed_loopback_port()
    assert main(["status", "--port", f"socket://127.0.0.1:{port}"]) == ExitCode.DEVICE == 3
    assert "spikeforge: " in capsys.readouterr().err


def test_exit_codes_keep_their_published_values():
    # docs/architecture.md ("Errors and exit codes") and scripts rely on these numbers.
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "FAILURE": 1, "USAGE": 2, "DEVICE": 3, "GATEWARE": 4, "ENVIRONMENT": 5,
        "DISK_FULL": 6, "INTERRUPTED": 130}
    assert exit_code_of(ConfigError("x")) == ExitCode.USAGE
    assert exit_code_of(DeviceNotFound("x")) == ExitCode.DEVICE


def test_the_docs_table_lists_every_exit_code():
    text = (PACKAGE_ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Errors and exit codes", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in section.splitlines() if line.startswith("| ") and "---" not in line}
    rows.pop("code")
    assert rows == {str(int(code)): f"`{code.name}`" for code in ExitCode}


def test_no_module_sets_an_exit_code_as_a_literal_number():
    literals = []
    for folder in ("spikeforge", "host", "boards", "sim", "firmware", "hdl"):
        for path in (PACKAGE_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                targets = (node.targets if isinstance(node, ast.Assign)
                           else [node.target] if isinstance(node, ast.AnnAssign) else [])
                if any(getattr(t, "id", None) == "exit_code" for t in targets) \
                        and isinstance(node.value, ast.Constant):
                    literals.append(f"{path.relative_to(PACKAGE_ROOT)}:{node.lineno}")
    assert not literals, f"use spikeforge.host.errors.ExitCode: {literals}"


def test_the_host_and_the_boards_share_one_device_error_family():
    from spikeforge.boards import errors as board_errors
    from spikeforge.host import device

    assert device.DeviceError is board_errors.DeviceError is DeviceError
    assert device.DevicePermissionDenied is board_errors.DevicePermissionDenied
    assert device.DeviceBusy is board_errors.DeviceBusy
    assert issubclass(board_errors.BoardNotFound, device.DeviceNotFound)
    for cls in (board_errors.BoardNotFound, board_errors.ProgrammingFailed,
                device.DeviceSilent, device.RegisterRefused):
        assert cls("x").exit_code == ExitCode.DEVICE


def test_one_benchmark_unavailable_with_the_environment_code():
    from spikeforge.sim import accuracy, compression_bench

    assert compression_bench.BenchmarkUnavailable is accuracy.BenchmarkUnavailable
    assert accuracy.BenchmarkUnavailable("x").exit_code == ExitCode.ENVIRONMENT


def test_sim_urls_are_recognised_and_parsed_in_one_place(tmp_path):
    from spikeforge.cli.record import device_url
    from spikeforge.sim.virtual_board import board_from_sim_url, config_from_sim_url, is_sim_url

    assert is_sim_url("sim://?channels=8") and is_sim_url(f"sim://{tmp_path}/c.json")
    for url in ("/dev/ttyUSB1", "socket://localhost:7777", "loop://", "udp://10.0.0.2"):
        assert not is_sim_url(url)
        with device_url(url) as opened:      # no virtual board for a real port
            assert opened == url
    with pytest.raises(ConfigError, match="starts with sim://"):
        config_from_sim_url("socket://localhost:7777")
    url = "sim://?channels=8&identity_interval_frames=16&cable_delay=3"
    config, feed = board_from_sim_url(url)
    assert config == config_from_sim_url(url) and config.channels == 8 and feed is None


def test_budget_takes_missing_detector_fields_from_the_detector_defaults(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"channels": 4, "detector": {"enabled": True}}))
    assert main(["budget", "--config", str(path), "--json"]) == 0
    stream = json.loads(capsys.readouterr().out)["stream"]
    defaults = DetectorConfig()
    assert stream["detector_enabled"] is True
    assert (stream["snippet_pre"], stream["snippet_post"]) == (defaults.snippet_pre,
                                                              defaults.snippet_post)


def test_option_defaults_are_the_defaults_they_mirror():
    from spikeforge.host.budget import DEFAULT_SPIKE_RATE_HZ
    from spikeforge.sim.accuracy import NEO_THRESHOLD_K

    parser = build_parser()
    decimator = parser.parse_args(["bench", "decimator"])
    assert (decimator.factor, decimator.order, decimator.sample_rate_hz) == (
        DecimatorConfig().factor, DecimatorConfig().order, SystemConfig().sample_rate_hz)
    assert parser.parse_args(["bench", "detect"]).neo_k == NEO_THRESHOLD_K
    assert parser.parse_args(["budget"]).spike_rate_hz == DEFAULT_SPIKE_RATE_HZ
