"""Regression guard for the control path's size on the iCE40 (docs/boards.md, "Control
path"): each core synthesised alone stays within its budget, about 10 % above what it
measured when the budget was set. A change that grows one beyond it must say why in
docs/boards.md and raise the budget here. Yosys only (no place and route), ~30 s."""

import pytest

from spikeforge.boards.figures import DETECTION_OVERRIDES, reference_config
from spikeforge.sim.control_cost import control_path_costs

pytestmark = pytest.mark.slow

#: LUT4 and flip-flop budgets per core (measured 535/301, 90/35, 41/43, 350/80 with the
#: detection reference configuration at 16 channels; before the shrink the decoder took
#: 635/433 and the bank 669/288). The bank then grew to 409/99 with the channel-mask
#: registers (0x11-0x14) and the bandwidth-mode registers (0xC0-0xC1): budget raised.
BUDGETS = {
    "CommandDecoder": (590, 330),
    "LinkArbiter": (100, 40),
    "UARTReceiver": (50, 50),
    "RegisterBank": (450, 110),
}


def test_the_control_path_cores_stay_within_their_ice40_budgets():
    config = reference_config("icebreaker", 16, DETECTION_OVERRIDES)
    costs = {cost.core: cost for cost in control_path_costs(config)}
    assert set(costs) == set(BUDGETS)
    for core, (luts, flip_flops) in BUDGETS.items():
        cost = costs[core]
        assert cost.luts <= luts, f"{core}: {cost.luts} LUT4 > budget {luts}"
        assert cost.flip_flops <= flip_flops, (
            f"{core}: {cost.flip_flops} flip-flops > budget {flip_flops}")
    assert costs["CommandDecoder"].block_rams == 1, "the reply FIFO is one block RAM"
