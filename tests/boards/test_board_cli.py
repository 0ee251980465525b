"""`spikeforge build/flash` start from the board's default configuration; options and a
configuration file override single fields."""

import argparse
import json

from spikeforge.boards import get_board
from spikeforge.cli.boards import board_config as _board_config


def _args(**values):
    defaults = {"board": "ulx3s-85f", "config": None, "channels": None,
                "sample_rate_hz": None, "baud": None}
    return argparse.Namespace(**{**defaults, **values})


def test_no_options_build_the_board_default():
    for name in ("icebreaker", "ulx3s-12f"):
        assert _board_config(_args(board=name)) == get_board(name).default_config


def test_options_and_a_config_file_override_fields_of_the_board_default(tmp_path):
    path = tmp_path / "my.json"
    path.write_text(json.dumps({"channels": 8, "sweeps_per_frame": 8}))
    config = _board_config(_args(config=str(path), baud=1_000_000))
    assert config.channels == 8 and config.sweeps_per_frame == 8
    assert config.baud == 1_000_000
    assert config.clock_hz == get_board("ulx3s-85f").clock_hz  # from the board default


def test_recording_from_a_board_uses_its_link_rate_unless_baud_is_given():
    from spikeforge.cli.record import record_baud as _record_baud
    from spikeforge.firmware.config import SystemConfig

    assert _record_baud(argparse.Namespace(baud=None, board="icebreaker")) == 4_000_000
    assert _record_baud(argparse.Namespace(baud=None, board="ulx3s-12f")) == 3_000_000
    assert _record_baud(argparse.Namespace(baud=115_200, board="icebreaker")) == 115_200
    assert _record_baud(argparse.Namespace(baud=None, board=None)) == SystemConfig().baud
