"""The Ethernet TX benches' cases for `make sim` (sim.suite appends them to its CASES)."""

from .suite_case import BenchCase

__all__ = ["CASES"]

CASES: tuple[BenchCase, ...] = ()
