"""Project exceptions. Each message names the problem and the fix."""

__all__ = ["SpikeforgeError", "ConfigError", "WireFormatError"]


class SpikeforgeError(Exception):
    """Base of every error spikeforge raises on purpose."""


class ConfigError(SpikeforgeError, ValueError):
    """A configuration that the hardware cannot implement."""


class WireFormatError(SpikeforgeError, ValueError):
    """Bytes that are not a valid frame, or a frame that cannot be built."""
