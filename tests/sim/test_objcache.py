"""The compiler cache that Verilator builds share: a hit gives the object the compiler would
make, and a changed header or flag is a miss, never a stale object."""

import shutil
import subprocess
from pathlib import Path

import pytest

from spikeforge.sim.objcache import compile_cached

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler (Verilator needs one)")


def _objects(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/*.o"))


def test_hits_share_objects_and_changes_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_BUILD", str(tmp_path / "build"))
    cache = tmp_path / "build" / "sim" / "objcache"
    header = tmp_path / "value.h"
    header.write_text("#define VALUE 41\n")
    source = tmp_path / "unit.cpp"
    source.write_text('#include "value.h"\nint value() { return VALUE + 1; }\n')

    def build(where: str, *flags: str) -> bytes:
        out = tmp_path / where
        out.mkdir(exist_ok=True)
        argv = [CXX, "-Os", *flags, f"-I{tmp_path}", "-MMD", "-MP", "-c", "-o",
                str(out / "unit.o"), str(source)]
        assert compile_cached(argv) == 0
        # make reads the dependency file on hits as on misses
        assert "value.h" in (out / "unit.d").read_text()
        return (out / "unit.o").read_bytes()

    first = build("a")
    assert len(_objects(cache)) == 1
    assert build("b") == first and len(_objects(cache)) == 1      # a hit: nothing new
    header.write_text("#define VALUE 99\n")
    changed = build("c")
    assert changed != first and len(_objects(cache)) == 2         # header changed: a miss
    build("d", "-O0")
    assert len(_objects(cache)) == 3                              # flags changed: a miss
    # the cached object is the one the compiler makes
    direct = tmp_path / "direct.o"
    subprocess.run([CXX, "-Os", f"-I{tmp_path}", "-c", "-o", str(direct), str(source)],
                   check=True)
    assert direct.read_bytes() == changed


def test_other_commands_and_failures_pass_through(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_BUILD", str(tmp_path / "build"))
    broken = tmp_path / "broken.cpp"
    broken.write_text("int broken( {\n")
    assert compile_cached([CXX, "-c", "-o", str(tmp_path / "b.o"), str(broken)]) != 0
    assert not _objects(tmp_path / "build" / "sim" / "objcache")
    assert compile_cached([CXX, "--version"]) == 0               # not a compile: just run


def test_the_launcher_caches_in_one_place_from_any_folder(tmp_path, monkeypatch):
    """Verilator's makefile runs the launcher in each build's own folder, with a relative
    SPIKEFORGE_BUILD (the default "build"): the objects must still land in one cache."""
    from spikeforge.sim.objcache import objcache_command

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPIKEFORGE_BUILD", "build")
    monkeypatch.delenv("SPIKEFORGE_OBJCACHE_DIR", raising=False)
    launcher = objcache_command()
    assert launcher is not None
    source = tmp_path / "unit.cpp"
    source.write_text("int one() { return 1; }\n")
    for name in ("a", "b"):
        folder = tmp_path / "build" / "sim" / f"top-{name}"   # a build folder, as Verilator's
        folder.mkdir(parents=True)
        subprocess.run([launcher, CXX, "-c", "-o", "unit.o", str(source)], cwd=folder,
                       check=True)
        assert (folder / "unit.o").exists()
    assert len(_objects(tmp_path / "build" / "sim" / "objcache")) == 1
    assert not list((tmp_path / "build" / "sim" / "top-a").rglob("objcache"))
