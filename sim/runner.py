"""Runs a cocotb bench on Verilator for one Amaranth design and reports what it proved.

A bench is a cocotb test module in :mod:`spikeforge.sim.benches`. The runner generates
Verilog from the Amaranth component, builds it with Verilator (cached by the digest of the
Verilog, the build arguments and Verilator's version: a design built once is not rebuilt,
and the build's precompiled headers are dropped once it is linked), runs the module's tests
with the configuration passed in the environment, and reads back the bench's own report:
how many items it compared and how many cycles it simulated.
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.folder_lock import locked_folder

from .ports import top_ports
from .toolchain import drop_precompiled_headers, verilator_environment, verilator_version

__all__ = ["BenchResult", "BenchFailed", "run_bench", "BUILD_ROOT", "bench_parameters",
           "report"]

BUILD_ROOT = Path(os.environ.get("SPIKEFORGE_BUILD", "build")) / "sim"
_PARAMS_ENV = "SPIKEFORGE_BENCH_PARAMS"
_REPORT_ENV = "SPIKEFORGE_BENCH_REPORT"
_BUILD_ARGS = ("-Wno-fatal", "-O3")


class BenchFailed(SpikeforgeError):
    """An RTL bench found the design and its golden model disagree (or crashed)."""


@dataclass
class BenchResult:
    bench: str
    configuration: str
    passed: bool
    items: int = 0
    cycles: int = 0
    wall_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    log: Path | None = None
    build: Path | None = None  #: the Verilator build folder (cached by the design's digest)


def run_bench(bench: str, component: Any, params: dict[str, Any], *, label: str,
              toplevel: str = "top") -> BenchResult:
    """Run ``spikeforge.sim.benches.<bench>`` against ``component``.

    ``params`` (JSON-serialisable) reach the bench through :func:`bench_parameters`.
    """
    from amaranth.back import verilog
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    env = verilator_environment()
    started = time.perf_counter()
    source = verilog.convert(component, name=toplevel, emit_src=False,
                             ports=top_ports(component))
    key = "\0".join([source, *_BUILD_ARGS, verilator_version()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    build_dir = (BUILD_ROOT / f"{toplevel}-{digest}").resolve()
    # The label's own digest: two labels that share the slug's first 80 characters must not
    # share a run folder (parallel workers run them at once).
    label_digest = hashlib.sha256(f"{bench}\0{label}".encode()).hexdigest()[:8]
    run_dir = (BUILD_ROOT / "runs" / f"{bench}-{_slug(label)}-{label_digest}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    report_path = run_dir / "report.json"
    report_path.unlink(missing_ok=True)
    results_xml = run_dir / "results.xml"
    results_xml.unlink(missing_ok=True)
    log_path = run_dir / "sim.log"

    runner = get_runner("verilator")
    verilog_path = build_dir / f"{toplevel}.v"
    with locked_folder(build_dir):  # cases of one design may run in parallel workers
        build_dir.mkdir(parents=True, exist_ok=True)
        if not (build_dir / toplevel).exists():  # the executable: built and linked before
            verilog_path.write_text(source)
            runner.build(
                sources=[verilog_path], hdl_toplevel=toplevel, build_dir=build_dir,
                build_args=list(_BUILD_ARGS), log_file=build_dir / "build.log",
            )
            drop_precompiled_headers(build_dir)
    try:
        runner.test(
            test_module=f"spikeforge.sim.benches.{bench}", hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=build_dir, test_dir=run_dir, results_xml=str(results_xml),
            extra_env={**env, _PARAMS_ENV: json.dumps(params), _REPORT_ENV: str(report_path)},
            log_file=log_path,
        )
    except SystemExit as exc:
        raise BenchFailed(f"bench {bench} [{label}] did not run: {exc}; see {log_path}") from None
    tests, failed = get_results(results_xml)
    details = json.loads(report_path.read_text()) if report_path.exists() else {}
    return BenchResult(
        bench=bench, configuration=label, passed=tests > 0 and failed == 0,
        items=int(details.pop("items", 0)), cycles=int(details.pop("cycles", 0)),
        wall_s=time.perf_counter() - started, details=details, log=log_path,
        build=build_dir,
    )


def bench_parameters() -> dict[str, Any]:
    """Inside a bench: the parameters :func:`run_bench` was given."""
    return json.loads(os.environ[_PARAMS_ENV])


def report(**values: Any) -> None:
    """Inside a bench: record what it proved (``items`` compared, ``cycles`` simulated, ...).

    Repeated calls merge, adding numbers of the same key, so each test of a module adds its
    own counts.
    """
    path = Path(os.environ[_REPORT_ENV])
    current = json.loads(path.read_text()) if path.exists() else {}
    for key, value in values.items():
        if isinstance(value, int | float) and isinstance(current.get(key), int | float):
            current[key] += value
        else:
            current[key] = value
    path.write_text(json.dumps(current))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80]
