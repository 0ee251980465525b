"""The Ethernet RX benches' cases for `make sim` (sim.suite appends them to its CASES)."""

from .suite_case import BenchCase

__all__ = ["CASES"]


def _receiver() -> object:
    from spikeforge.hdl.ethernet.receiver import EthernetReceiver

    return EthernetReceiver()


def _case(label: str, **params) -> BenchCase:
    return BenchCase(bench="ethernet_rx", label=label, component=_receiver, params=params)


CASES: tuple[BenchCase, ...] = (
    _case("every frame kind, min IFG", frames="catalogue", stall="none"),
    _case("every frame kind, replies and commands stalled", frames="catalogue", stall="some"),
    _case("120 random frames seed 1, stalled", frames="random", seed=1, count=120,
          stall="some"),
)
