"""A compiler cache for the C++ that Verilator builds, so that benches share the objects
they have in common.

Every Verilator build compiles the same runtime (``verilated.cpp``, ``verilated_vpi.cpp``,
``verilated_threads.cpp``, ``verilated_dpi.cpp``) and cocotb's ``verilator.cpp``: about
three quarters of a small design's build time, the same for every bench case. Verilator's
makefile runs each compile as ``$(OBJCACHE) $(CXX) ...``; :func:`objcache_command` is put
there (by :func:`spikeforge.sim.toolchain.verilator_environment`), and this module does what
ccache does in its preprocessor mode, small enough to need no tool of its own:

* A compile (``-c``, one ``.cpp`` source) is keyed by the SHA-256 of the compiler's identity,
  its arguments (the source and output paths left out) and the *preprocessed* source
  (``-E -P``: every header's text, so a changed header or design is a different key).
* A hit copies the cached object into place; a miss compiles, then stores the object.
* Anything else (linking, precompiled headers, a source that does not preprocess on its
  own, such as one that ``-include``s a precompiled header) runs the compiler unchanged.

The cache lives in ``<build>/sim/objcache`` (``SPIKEFORGE_BUILD``, default ``build``);
deleting it is always safe. ``SPIKEFORGE_OBJCACHE=0`` turns it off.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "compile_cached", "objcache_command", "main"]

_DISABLE_ENV = "SPIKEFORGE_OBJCACHE"


_DIR_ENV = "SPIKEFORGE_OBJCACHE_DIR"


def cache_dir() -> Path:
    """Where cached objects live (created on first use). The launcher fixes it as an
    absolute path, because the compiles run in each build's own folder."""
    if os.environ.get(_DIR_ENV):
        return Path(os.environ[_DIR_ENV])
    return Path(os.environ.get("SPIKEFORGE_BUILD", "build")).resolve() / "sim" / "objcache"


def objcache_command() -> str | None:
    """The ``OBJCACHE`` value for Verilator's makefile, or None when the cache is off.

    It is a small launcher script in :func:`cache_dir` that runs this module with the
    current Python, so that it works without an installed entry point.
    """
    if os.environ.get(_DISABLE_ENV, "1") == "0":
        return None
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    launcher = directory / "objcache"
    text = (f"#!/bin/sh\nexport {_DIR_ENV}='{directory}'\n"
            f"exec '{sys.executable}' -m spikeforge.sim.objcache \"$@\"\n")
    if not launcher.exists() or launcher.read_text() != text:
        _write_atomically(launcher, text.encode())
        launcher.chmod(0o755)
    # Make splits MAKEFLAGS on spaces: escape them.
    return str(launcher).replace(" ", "\\ ")


def compile_cached(argv: list[str]) -> int:
    """Run the compile ``argv`` (compiler first) through the cache; returns its exit code."""
    plan = _plan(argv)
    if plan is None:
        return subprocess.call(argv)
    source, output, flags = plan
    # With -MD/-MMD the compile writes a dependency file beside the object; preprocessing
    # writes the same one, so a hit leaves make exactly what a compile would.
    depfile = []
    if "-MD" in flags or "-MMD" in flags:
        depfile = ["-MF", str(Path(output).with_suffix(".d")), "-MT", output]
    preprocessed = subprocess.run([argv[0], *flags, *depfile, "-E", "-P", source],
                                  capture_output=True)
    if preprocessed.returncode != 0:
        return subprocess.call(argv)
    key = hashlib.sha256()
    for part in (_compiler_identity(argv[0]), "\0".join(flags).encode(), preprocessed.stdout):
        key.update(hashlib.sha256(part).digest())
    cached = cache_dir() / key.hexdigest()[:2] / f"{key.hexdigest()}.o"
    if cached.exists():
        shutil.copyfile(cached, output)
        return 0
    code = subprocess.call(argv)
    if code == 0 and Path(output).exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(cached, Path(output).read_bytes())
    return code


def _plan(argv: list[str]) -> tuple[str, str, list[str]] | None:
    """(source, object, the other arguments) of a plain one-source compile, else None."""
    if len(argv) < 3 or "-c" not in argv:
        return None
    sources = [a for a in argv[1:] if a.endswith((".cpp", ".cc", ".cxx"))]
    if len(sources) != 1:
        return None
    source = sources[0]
    flags: list[str] = []
    output = None
    skip = False
    for index, arg in enumerate(argv[1:], start=1):
        if skip:
            skip = False
            continue
        if arg == "-o":
            if index + 1 >= len(argv):
                return None
            output, skip = argv[index + 1], True
        elif arg in ("-c", source):
            continue
        elif arg.startswith(("-M", "-x")) and arg not in ("-MMD", "-MD", "-MP"):
            return None  # dependency-file names or a language switch: not a plain compile
        else:
            flags.append(arg)
    if output is None:
        output = Path(source).with_suffix(".o").name
    return source, output, flags


def _compiler_identity(compiler: str) -> bytes:
    path = shutil.which(compiler) or compiler
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True).stdout
    except OSError:
        version = b""
    return f"{os.path.realpath(path)}\0".encode() + version


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    """``python -m spikeforge.sim.objcache CXX ARGS...``: compile through the cache."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m spikeforge.sim.objcache CXX [ARGS...]", file=sys.stderr)
        return 2
    return compile_cached(args)


if __name__ == "__main__":
    sys.exit(main())
