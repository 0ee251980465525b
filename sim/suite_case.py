"""One RTL bench case of `make sim`: a bench module, the design it runs on, its parameters."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeforge.firmware.config import SystemConfig

from .runner import BUILD_ROOT

__all__ = ["BenchCase"]


@dataclass(frozen=True)
class BenchCase:
    bench: str                         #: module in spikeforge.sim.benches
    label: str                         #: the configuration, as the summary shows it
    component: Callable[[], Any]       #: builds the Amaranth design under test
    params: dict[str, Any] = field(default_factory=dict)
    config: SystemConfig | None = None

    @property
    def case_id(self) -> str:
        return f"{self.bench}[{self.label}]"

    @property
    def capture_path(self) -> Path:
        safe = "".join(c if c.isalnum() else "_" for c in self.label)
        return (BUILD_ROOT / "captures" / f"{self.bench}-{safe}.bin").resolve()
