"""Board top for the iCEBreaker (Lattice iCE40UP5K-SG48, 12 MHz oscillator, FT2232H).

Pins used:

=============  =====  =================================================================
what           pin    notes
=============  =====  =================================================================
``clk12``      35     12 MHz oscillator, the ``sync`` domain (platform default clock)
UART TX        9      FPGA -> FT2232H channel B, i.e. the second ``/dev/ttyUSB*``
LED green      37     on while streaming
LED red        11     on for a while after a frame was dropped
=============  =====  =================================================================
"""

from collections.abc import Callable

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io

from spikeforge.firmware.config import SystemConfig

from .errors import BoardConfigError
from .registry import get_board

__all__ = ["ICEBreakerTop"]


def _acquisition_system(config: SystemConfig) -> Elaboratable:
    # Imported here so that the board layer can be imported (registry, cache keys, error
    # messages) without elaborating the HDL package.
    from spikeforge.hdl.top import AcquisitionSystem

    return AcquisitionSystem(config)


class ICEBreakerTop(Elaboratable):
    """The acquisition system on the iCEBreaker's pins.

    Parameters
    ----------
    config:
        What to build; ``config.clock_hz`` must be the board's 12 MHz (checked when
        elaborated: :class:`~spikeforge.boards.errors.BoardConfigError` otherwise).
    system:
        Makes the design to put on the board from ``config``; default
        :class:`spikeforge.hdl.top.AcquisitionSystem`. Anything with the same ports
        (``uart_tx``, ``streaming``, ``overflow``, all outputs) will do, e.g. a test design.
    """

    def __init__(self, config: SystemConfig,
                 system: Callable[[SystemConfig], Elaboratable] | None = None):
        self.config = config
        self._make_system = system or _acquisition_system

    def elaborate(self, platform):
        get_board("icebreaker").check_config(self.config)
        if platform is not None and platform.default_clk_frequency != self.config.clock_hz:
            raise BoardConfigError(
                f"platform {type(platform).__name__} clocks the design at "
                f"{platform.default_clk_frequency / 1e6:g} MHz, but config.clock_hz is "
                f"{self.config.clock_hz:,} Hz"
            )

        m = Module()
        m.submodules.system = system = self._make_system(self.config)

        # The system's line may come from logic (glitches within a cycle) and an iCE40 I/O
        # register powers up low (a false start bit): retime it in a fabric register that
        # is high from configuration on, then drive the pin directly.
        uart_tx = Signal(init=1)
        m.d.sync += uart_tx.eq(system.uart_tx)
        uart_pins = platform.request("uart", 0, dir="-")
        m.submodules.uart_tx_buffer = tx_buffer = io.Buffer("o", uart_pins.tx)
        m.d.comb += tx_buffer.o.eq(uart_tx)
        # uart_pins.rx stays an input: nothing listens to the host yet.

        m.submodules.led_streaming = led_green = io.Buffer(
            "o", platform.request("led_g", 0, dir="-"))
        m.submodules.led_overflow = led_red = io.Buffer(
            "o", platform.request("led_r", 0, dir="-"))
        m.d.comb += [
            led_green.o.eq(system.streaming),
            led_red.o.eq(system.overflow),
        ]
        return m
