"""The event record of an EVENTS payload, as the detector core emits it word by word.

An EVENTS payload is a sequence of whole records (:data:`EVENT_RECORD` then the snippet):
samples before and after the peak in the snippet (uint8 each, so the record's length is in
its first 16-bit word), timestamp (uint32, sample number of the peak), channel (uint16), peak
amplitude (int16, conditioned LSB), then ``pre + 1 + post`` int16 snippet samples, all
little-endian. Imports nothing of spikeforge but the errors.
"""

import struct
from collections.abc import Iterable

from .errors import WireFormatError

__all__ = ["EVENT_RECORD", "encode_event"]

#: snippet samples before the peak, after the peak, timestamp, channel, peak.
EVENT_RECORD = struct.Struct("<BBIHh")


def encode_event(sample: int, channel: int, peak: int, snippet: Iterable[int],
                 pre: int) -> bytes:
    """One event record of an EVENTS payload; ``snippet`` holds pre + 1 + post samples."""
    snippet = [int(v) for v in snippet]
    post = len(snippet) - pre - 1
    if not (0 <= pre <= 255 and 0 <= post <= 255):
        raise WireFormatError(
            f"an event snippet must have 0..255 samples on each side of the peak, not "
            f"pre={pre}, post={post}")
    body = EVENT_RECORD.pack(pre, post, sample & 0xFFFFFFFF, channel, peak)
    return body + struct.pack(f"<{len(snippet)}h", *snippet)
