"""The contract (firmware/) has no import cycle, counting every import: module level,
function level and ``if TYPE_CHECKING`` ones. And the leaves of the wire format import only
what is below them, so the host parser, the HDL and the configuration can all build on them."""

import ast
from pathlib import Path

import pytest

import spikeforge.firmware as firmware

FIRMWARE = Path(firmware.__file__).parent
PACKAGE = "spikeforge.firmware"


def _module_names() -> set[str]:
    return {path.stem for path in FIRMWARE.glob("*.py") if path.stem != "__init__"}


def _imports(source: str, modules: set[str]) -> set[str]:
    """Firmware modules that ``source`` imports anywhere in its body (ast.walk reaches
    imports inside functions, methods and ``if`` blocks)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module or ""
            elif node.level == 0 and (node.module or "").startswith(PACKAGE):
                base = (node.module or "")[len(PACKAGE):].lstrip(".")
            else:
                continue
            if base:
                found.add(base.split(".")[0])
            else:  # from . import a, b
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name[len(PACKAGE) + 1:].split(".")[0])
    return found & modules


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    modules = set(sources)
    return {name: _imports(text, modules) - {name} for name, text in sources.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _firmware_sources() -> dict[str, str]:
    return {name: (FIRMWARE / f"{name}.py").read_text() for name in _module_names()}


def test_firmware_modules_import_each_other_without_a_cycle():
    cycle = find_cycle(import_graph(_firmware_sources()))
    assert cycle is None, (
        f"import cycle in firmware/: {' -> '.join(cycle)}; move the shared names into a "
        f"module that imports neither (e.g. framing.py)")


def test_the_walker_sees_function_level_and_type_checking_imports():
    """The check must catch the cycle firmware/ used to have (config.link_load imported
    wire inside the method, and wire imported config at the top)."""
    sources = {
        "config": "from .errors import ConfigError\n"
                  "class C:\n    def load(self):\n        from .wire import X\n",
        "wire": "from .config import C\n",
        "errors": "",
        "proto": "from typing import TYPE_CHECKING\n"
                 "if TYPE_CHECKING:\n    from spikeforge.firmware.config import C\n",
    }
    graph = import_graph(sources)
    assert graph["config"] == {"errors", "wire"}
    assert graph["proto"] == {"config"}
    assert find_cycle(graph) in (["config", "wire", "config"], ["wire", "config", "wire"])
    del sources["wire"]
    assert find_cycle(import_graph(sources)) is None


@pytest.mark.parametrize("module, allowed", [
    ("errors", set()),
    ("framing", {"errors"}),
    ("event_record", {"errors"}),
    ("siphash", {"errors"}),
    # config: type hints only; siphash: the MAC of authenticated commands
    ("control_protocol", {"errors", "framing", "siphash", "config"}),
    ("bandwidth", {"config"}),                               # config: type hints only
])
def test_wire_format_leaves_import_only_what_is_below_them(module, allowed):
    imported = import_graph(_firmware_sources())[module]
    assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"


@pytest.mark.parametrize("module", ["framing", "event_record", "control_protocol",
                                    "bandwidth"])
def test_wire_format_leaves_load_without_the_configuration(module):
    """At run time the leaves pull in no configuration (the TYPE_CHECKING imports stay
    unexecuted), so a fresh interpreter loads them alone."""
    import subprocess
    import sys

    probe = (f"import sys, {PACKAGE}.{module}; "
             f"print(sorted(m for m in sys.modules if m.startswith('{PACKAGE}.')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    loaded = set(ast.literal_eval(out))
    assert loaded <= {f"{PACKAGE}.{name}"
                      for name in ("errors", "framing", "siphash", module)}, loaded


def test_wire_keeps_every_name_it_exported():
    """Other layers import from firmware.wire; the names there are the leaf modules'."""
    from spikeforge.firmware import (
        bandwidth,
        control_protocol,
        event_record,
        framing,
        identity,
        wire,
    )

    homes = (framing, event_record, control_protocol, bandwidth, identity)
    for name in wire.__all__:
        owners = [m for m in homes if name in m.__all__]
        assert len(owners) == 1, f"{name} is defined in {len(owners)} leaf modules"
        assert getattr(wire, name) is getattr(owners[0], name)
    assert set(wire.__all__) == {n for m in homes for n in m.__all__} - {"MAX_PAYLOAD_BYTES"}
