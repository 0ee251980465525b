"""Compile a small C++ test driver against the virtual board's headers (the tests that
check a C++ part of the harness against its Python twin)."""

import shutil
import subprocess
from pathlib import Path

import pytest


def compile_driver(folder: Path, source: str, include: Path, *flags: str) -> Path:
    """``source`` built in ``folder`` with ``include`` on the include path; skips the test
    where this machine has no C++ compiler."""
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler (the virtual board needs one too)")
    path = folder / "driver.cpp"
    path.write_text(source)
    binary = folder / "driver"
    subprocess.run([compiler, "-std=c++17", "-O1", *flags, f"-I{include}", str(path), "-o",
                    str(binary)], check=True)
    return binary
