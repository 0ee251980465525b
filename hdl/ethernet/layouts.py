"""Stream layouts shared by the Ethernet cores."""

from amaranth.lib import data

__all__ = ["FrameByteLayout"]

#: One byte of an Ethernet frame (destination MAC first, FCS not included), ``last`` on its
#: final byte. The MAC's transmitter takes frames in this form (it adds preamble, SFD,
#: padding, FCS and the gap); the receiver delivers them so, with the FCS already checked.
FrameByteLayout = data.StructLayout({"data": 8, "last": 1})
