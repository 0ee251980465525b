"""The host side: decode and record what the device sends. Never imports Amaranth or hdl/."""

from .frames import (
    DataBlock,
    DetectorEvent,
    EventBlock,
    Frame,
    FrameParser,
    Identity,
    LinkStats,
    Reply,
    StreamDecoder,
    StreamItem,
)

__all__ = [
    "Frame", "DataBlock", "Identity", "LinkStats", "FrameParser", "StreamDecoder", "StreamItem",
    "DetectorEvent", "EventBlock", "Reply",
]
