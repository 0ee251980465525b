"""The top the virtual board compiles: the acquisition system with an internal power-on
reset, so that no logic depends on a reset input.

Verilator evaluates everything that depends on a top-level input in its "input combo"
region on every ``eval()`` (twice per clock cycle), and with ``rst`` an input that is the
reset multiplexer of every register in the design. With the reset made inside (a counter
in a reset-less domain on the same clock), the logic runs once per rising edge only. The
other ports of :class:`~spikeforge.hdl.top.AcquisitionSystem` pass through unchanged, with
the same Verilog names.

With the Ethernet link (``config.link == "ethernet"``) the top also has the clock inputs
``link_clk`` (the 125 MHz GMII transmit domain ``link``) and ``eth_rx_clk`` (the receive
domain ``eth_rx``), each domain with its own power-on reset of the same length.

With ``direct=True`` (a UART board with the test source; :func:`direct_design_config`) the
top is the "direct-link" virtual board: the design runs on a clock of about channels x
sample rate instead of the board's (the datapath takes one sample per clock, so the
simulation does the same work per sample in a few times fewer cycles), and the UART's two
halves are replaced by byte-wide streams the harness reads and writes directly
(``link_tx_*``: the bytes the link arbiter would have sent, ``link_rx_*``: the command bytes).
The harness takes and gives bytes at the board's UART byte rate (a token bucket in design
cycles), so frames still queue and drop exactly when the board's link is too slow; the
IDENTITY frames report the board's configuration (its clock and baud rate). The frames,
decoder and loss accounting the host sees are the same as the bit-level board's.
"""

import math

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.control_protocol import MIN_RX_DIVISOR, has_control_path
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.registers import ERROR_COUNTER_BITS
from spikeforge.hdl.top import AcquisitionSystem

__all__ = ["VirtualBoardTop", "POWER_ON_RESET_CYCLES", "direct_design_config",
           "DIRECT_SPARE_CYCLES", "ByteTransmitter", "ByteReceiver"]

#: Idle cycles per sample period a direct-link design keeps beyond its channels (the
#: configuration needs one; the second leaves the framer a cycle of slack per sweep).
DIRECT_SPARE_CYCLES = 2
#: Design cycles per link byte a direct-link design has at least: the framer and the link
#: arbiter move at most a byte per cycle, so the design's clock must outpace the board's
#: link with room to spare, or the simulated link would be slower than the board's.
DIRECT_CYCLES_PER_LINK_BYTE = 4


def direct_design_config(config: SystemConfig) -> SystemConfig | None:
    """The configuration a direct-link virtual board elaborates for the board ``config``:
    the same, on the slowest clock (a whole number of cycles per sample, at least channels
    + :data:`DIRECT_SPARE_CYCLES`, and :data:`DIRECT_CYCLES_PER_LINK_BYTE` cycles per byte of
    the board's link) every core accepts, with a UART divisor that keeps or
    lacks the control path as the board does. None when no clock is slower than the
    board's (or the board is not a UART board with the test source)."""
    if config.link != "uart" or config.source != "test":
        return None
    control = has_control_path(config)
    link_bytes_per_s = config.clock_hz / config.cycles_per_byte
    first = max(config.channels + DIRECT_SPARE_CYCLES,
                math.ceil(DIRECT_CYCLES_PER_LINK_BYTE * link_bytes_per_s
                          / config.sample_rate_hz))
    for cycles in range(first, config.cycles_per_sample):
        clock_hz = cycles * config.sample_rate_hz
        divisor = MIN_RX_DIVISOR + 1 if control else 1
        try:
            return config.replace(clock_hz=clock_hz, baud=clock_hz // divisor)
        except ConfigError:
            continue
    return None


class ByteTransmitter(wiring.Component):
    """The UART transmitter's place on a direct-link board: what it is given leaves on
    ``byte`` (the harness takes a byte when the board's UART would have). ``tx`` idles."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)
    byte: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.byte.payload.eq(self.i.payload), self.byte.valid.eq(self.i.valid),
                     self.i.ready.eq(self.byte.ready)]
        return m


class ByteReceiver(wiring.Component):
    """The UART receiver's place on a direct-link board: the command bytes arrive on
    ``byte`` (at the board's UART byte rate); ``rx`` is not listened to, and there are no
    framing errors. Like the UART receiver, ``o`` is a register held until taken;
    ``byte.ready`` depends only on it (the harness reads it before the edge)."""

    rx: In(1)
    o: Out(stream.Signature(8))
    framing_errors: Out(ERROR_COUNTER_BITS)
    byte: In(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.byte.ready.eq(~self.o.valid)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.byte.valid & self.byte.ready):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.byte.payload)]
        return m


class _DirectLinkSystem(AcquisitionSystem):
    """The acquisition system with :class:`ByteTransmitter` and :class:`ByteReceiver` as
    its UART halves, reporting ``identity`` (the board's configuration)."""

    def __init__(self, config: SystemConfig, identity: SystemConfig):
        super().__init__(config, identity=identity)
        self.transmitter = ByteTransmitter()
        self.receiver = ByteReceiver()

    def _uart_transmitter(self, divisor: int) -> wiring.Component:
        return self.transmitter

    def _uart_receiver(self, divisor: int) -> wiring.Component:
        return self.receiver

#: Rising clock edges the design is held in reset after power-up (the harness clocks these
#: before its cycle 0, as it did when it drove ``rst`` itself).
POWER_ON_RESET_CYCLES = 4


class VirtualBoardTop(Elaboratable):
    def __init__(self, config: SystemConfig, system=None, *, direct: bool = False):
        """``system``: the design to wrap (default: the acquisition system of ``config``;
        tests pass a stand-in with the same ports). ``direct``: the direct-link board
        (module docstring); ``config`` is the board's, the design runs
        :func:`direct_design_config`."""
        self.direct = None
        if direct:
            design = direct_design_config(config)
            if design is None or system is not None:
                raise ConfigError(
                    f"{config.describe()} has no direct-link virtual board (it needs the UART "
                    "link, the test source and a clock faster than channels x sample rate); "
                    "use the bit-level board")
            self.direct = design
            system = _DirectLinkSystem(design, identity=config)
        self.system = AcquisitionSystem(config) if system is None else system
        self.clk = Signal()
        self.ports: list[Signal] = [self.clk]
        if self.direct is not None:
            self.link_tx_data = Signal(8, name="link_tx_data")
            self.link_tx_valid = Signal(name="link_tx_valid")
            self.link_tx_ready = Signal(name="link_tx_ready")
            self.link_rx_data = Signal(8, name="link_rx_data")
            self.link_rx_valid = Signal(name="link_rx_valid")
            self.link_rx_ready = Signal(name="link_rx_ready")
            self.ports += [self.link_tx_data, self.link_tx_valid, self.link_tx_ready,
                           self.link_rx_data, self.link_rx_valid, self.link_rx_ready]
        self._domains = ["sync"]
        if config.link == "ethernet":
            self._domains += ["link", "eth_rx"]
            self.link_clk = Signal(name="link_clk")
            self.eth_rx_clk = Signal(name="eth_rx_clk")
            self.ports += [self.link_clk, self.eth_rx_clk]
        self._passthrough = []
        for path, member, value in self.system.signature.flatten(self.system):
            port = Signal.like(value, name="__".join(map(str, path)))
            self.ports.append(port)
            self._passthrough.append((member.flow == In, port, value))

    def elaborate(self, platform):
        m = Module()
        for name in self._domains:
            clock = self.clk if name == "sync" else getattr(self, f"{name}_clk")
            por = f"{name}_por"
            m.domains += [ClockDomain(name), ClockDomain(por, reset_less=True)]
            m.d.comb += [ClockSignal(name).eq(clock), ClockSignal(por).eq(clock)]
            count = Signal(range(POWER_ON_RESET_CYCLES + 1), name=f"{name}_por_count")
            with m.If(count != POWER_ON_RESET_CYCLES):
                m.d[por] += count.eq(count + 1)
            m.d.comb += ResetSignal(name).eq(count != POWER_ON_RESET_CYCLES)
        m.submodules.system = self.system
        for is_input, port, value in self._passthrough:
            m.d.comb += value.eq(port) if is_input else port.eq(value)
        if self.direct is not None:
            tx, rx = self.system.transmitter.byte, self.system.receiver.byte
            m.d.comb += [
                self.link_tx_data.eq(tx.payload), self.link_tx_valid.eq(tx.valid),
                tx.ready.eq(self.link_tx_ready),
                rx.payload.eq(self.link_rx_data), rx.valid.eq(self.link_rx_valid),
                self.link_rx_ready.eq(rx.ready),
            ]
        return m
