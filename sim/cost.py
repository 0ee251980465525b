"""Hardware cost of the detection cores: state bits per channel and a Yosys synthesis run."""

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Shape

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import K_BITS

__all__ = ["state_bits_per_channel", "SynthesisResult", "synthesize_ice40"]


def state_bits_per_channel(config: SystemConfig) -> dict[str, int]:
    """Bits of per-channel memory, from the memories' widths and depths."""
    from spikeforge.hdl.conditioner import ConditionerState
    from spikeforge.hdl.detector import DetectorState

    ring = config.detector.ring_depth(config.cycles_per_sample)
    bits = {
        "conditioner state": Shape.cast(ConditionerState()).width,
        "detector state": Shape.cast(DetectorState(config)).width,
        "threshold k": K_BITS,
        f"snippet ring ({ring} x 16)": ring * 16,
    }
    bits["total"] = sum(bits.values())
    return bits


@dataclass(frozen=True)
class SynthesisResult:
    design: str
    channels: int
    cells: dict[str, int]

    @property
    def logic_cells(self) -> int:
        """iCE40 logic cells as nextpnr counts them: LUT4s and flip-flops share a cell, so
        max(LUT4, DFF) is a lower bound; reported with both."""
        luts = self.cells.get("SB_LUT4", 0)
        ffs = sum(v for k, v in self.cells.items() if k.startswith("SB_DFF"))
        return max(luts, ffs)


def synthesize_ice40(component, *, design: str, channels: int) -> SynthesisResult:
    """Run ``synth_ice40 -dsp`` (as the iCEBreaker build does; YoWASP or system Yosys, as
    boards.toolchain selects) on one component and return its cell counts."""
    from amaranth.back import rtlil

    from spikeforge.boards.toolchain import select_toolchain

    from .ports import top_ports

    toolchain = select_toolchain("ice40")
    yosys = toolchain.executables["yosys"]
    # Relative paths in a working folder: YoWASP tools only see the current directory.
    work = Path("build") / "synth"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        Path(tmp, "top.il").write_text(rtlil.convert(component, name="top", emit_src=False,
                                                              ports=top_ports(component)))
        subprocess.run(
            [yosys, "-q", "-p", "read_rtlil top.il; synth_ice40 -dsp -top top; "
             "tee -q -o stat.json stat -json"],
            check=True, capture_output=True, text=True, env=toolchain.environment(), cwd=tmp)
        text = Path(tmp, "stat.json").read_text()
    data = json.loads(text[text.index("{"):])
    cells = data.get("design", {}).get("num_cells_by_type") or data["modules"]["\\top"][
        "num_cells_by_type"]
    return SynthesisResult(design, channels, {re.sub(r"^\$", "", k): int(v)
                                              for k, v in cells.items()})
