"""CI regression guard: the reference configuration of each CI board still fits and meets
timing. The reference is the largest channel count recorded as fitting in
``boards/figures.json`` (by ``spikeforge figures``), so a change that makes the recorded
figures untrue fails here. One build per board, under a minute each here."""

import pytest

from spikeforge.boards import board_names
from spikeforge.boards.build import build
from spikeforge.boards.figures import load_figures, max_channels, reference_config

pytestmark = pytest.mark.slow

#: Every board: the ULX3S sizes share the design but not the placement (Fmax differs),
#: and a build takes well under a minute here, so all four cost about 3 minutes of CI.
CI_BOARDS = tuple(board_names())


@pytest.mark.parametrize("board", CI_BOARDS)
def test_the_largest_recorded_reference_configuration_still_fits_and_meets_timing(
        board, tmp_path):
    best = max_channels(load_figures()["rows"], board)
    if best is None:
        pytest.fail(f"no recorded figure for {board}: run `spikeforge figures --board {board}`")
    config = reference_config(board, best.channels)
    result = build(board, config, tmp_path)  # raises DoesNotFit / TimingNotMet
    assert result.fmax_achieved_mhz >= result.fmax_required_mhz
    for name, use in result.utilization.items():
        assert use.used <= use.available, name
    print(f"\n{board} {best.channels} channels:\n{result.summary()}")



def test_the_largest_recorded_detection_configuration_still_fits_and_meets_timing(tmp_path):
    """The iCEBreaker with the conditioning and detection path enabled (one build: the
    detection rows of the other boards are recorded but not rebuilt here, to keep CI short)."""
    from spikeforge.boards.figures import DETECTION, DETECTION_OVERRIDES

    rows = [r for r in load_figures()["rows"]
            if r.board == "icebreaker" and r.variant == DETECTION]
    if not rows:
        pytest.fail("no recorded detection figure for icebreaker: run `spikeforge figures "
                    "--board icebreaker --config boards/detection.json`")
    best = max_channels(rows, "icebreaker", DETECTION)
    if best is None:
        pytest.skip("the record says no detection configuration fits the iCEBreaker "
                    "(docs/detection.md): nothing to guard")
    config = reference_config("icebreaker", best.channels, DETECTION_OVERRIDES)
    result = build("icebreaker", config, tmp_path)
    assert result.fmax_achieved_mhz >= result.fmax_required_mhz
    for name, use in result.utilization.items():
        assert use.used <= use.available, name
