"""The ``full+private`` reference variant (``boards/private.json``): every core plus the link
cipher and command authentication, under the documented test key, recorded apart from
``full``."""

import json
from pathlib import Path

import pytest

from spikeforge.boards.figures import (
    AUTH,
    FULL,
    PRIVATE,
    FigureRow,
    reference_config,
    render_table,
    save_figures,
    system_cores,
    variant_of,
)

BOARDS = Path(__file__).parents[2] / "boards"
#: The documented test key of figures builds (``bytes(range(16))``, the benches' key).
TEST_KEY = "000102030405060708090a0b0c0d0e0f"


def _overrides(name: str) -> dict:
    return json.loads((BOARDS / name).read_text())


def test_private_json_is_full_json_plus_the_cipher_under_the_test_key():
    private = _overrides("private.json")
    full = _overrides("full.json")
    assert {k: v for k, v in private.items() if k in full} == full
    assert set(private) - set(full) == {"control_key", "stream_cipher"}
    assert private["control_key"] == TEST_KEY and private["stream_cipher"] is True


@pytest.mark.parametrize("board", ["butterstick", "ulx3s-85f"])
def test_private_variant_is_named_apart_from_full_and_builds_the_cipher(board):
    config = reference_config(board, 1024, _overrides("private.json"))
    assert config.stream_cipher and config.control_key == TEST_KEY
    assert variant_of(config) == f"{FULL}+{PRIVATE}"
    assert variant_of(reference_config(board, 1024, _overrides("full.json"))) == FULL
    assert "link_cipher" in system_cores(config)


def test_auth_alone_and_plain_cores_name_their_variants():
    keyed = reference_config("ulx3s-85f", 16, {"control_key": TEST_KEY})
    assert variant_of(keyed) == AUTH
    both = {"stream_cipher": True, "control_key": TEST_KEY}
    assert variant_of(reference_config("ulx3s-85f", 16, both)) == PRIVATE
    assert variant_of(reference_config("ulx3s-85f", 16)) == ""


def test_private_rows_are_kept_next_to_full_rows(tmp_path):
    path = tmp_path / "figures.json"
    full = FigureRow("butterstick", 1024, "ok", variant=FULL)
    private = FigureRow("butterstick", 1024, "ok", variant=f"{FULL}+{PRIVATE}")
    save_figures([full], command="a", toolchain="t", path=path)
    record = save_figures([private], command="b", toolchain="t", path=path)
    assert [r.variant for r in record["rows"]] == [FULL, f"{FULL}+{PRIVATE}"]
    assert set(record["commands"]) == {"butterstick + full", "butterstick + full+private"}
    assert "butterstick + full+private" in render_table(record["rows"])
