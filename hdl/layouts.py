"""Payload layouts of the streams between cores."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from spikeforge.firmware.config import SystemConfig

__all__ = ["SampleLayout", "EventWordLayout"]


class SampleLayout(data.StructLayout):
    """One sample on the channel-serial datapath.

    ``first`` marks channel 0 of a sweep (the first sample of a sample period); sweeps
    always carry every channel in order 0 .. channels-1.
    """

    def __init__(self, config: SystemConfig):
        super().__init__({
            "channel": unsigned(config.channel_bits),
            "value": signed(16),
            "first": 1,
        })


class EventWordLayout(data.StructLayout):
    """One 16-bit word of the detector's event stream (the EVENTS record, word by word);
    ``first`` marks the first word of an event."""

    def __init__(self):
        super().__init__({"data": 16, "first": 1})
