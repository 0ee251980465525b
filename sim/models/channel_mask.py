"""Golden model of the run-time channel mask (:class:`spikeforge.hdl.channel_mask.ChannelMask`).

State changes at the end of a cycle; what a cycle shows (``keep``, ``enabled``, the word in
force) is the state after the writes of the cycles before it.
"""

from spikeforge.firmware.config import SystemConfig

__all__ = ["ChannelMaskModel"]


class ChannelMaskModel:
    """The mask words and the enabled count, from ``config.channel_mask`` on."""

    def __init__(self, config: SystemConfig):
        self.channels = config.channels
        self.words = list(config.channel_mask_words)
        self.enabled = len(config.enabled_channels)
        #: Writes carried out and ignored, for the bench's report.
        self.applied = 0
        self.ignored = 0

    def keep(self, channel: int) -> bool:
        return bool(self.words[channel // 32] >> channel % 32 & 1)

    def in_force(self, index: int) -> int:
        return self.words[index] if 0 <= index < len(self.words) else 0

    def valid_bits(self, index: int) -> int:
        last = self.channels - 32 * (len(self.words) - 1)
        return (1 << last) - 1 if index == len(self.words) - 1 else 0xFFFFFFFF

    def write(self, index: int, value: int, allow: bool) -> bool:
        """A write of ``value`` to word ``index``; returns whether it was carried out."""
        if not (allow and 0 <= index < len(self.words)):
            self.ignored += 1
            return False
        new = value & self.valid_bits(index)
        enabled = self.enabled - self.words[index].bit_count() + new.bit_count()
        if enabled == 0:
            self.ignored += 1
            return False
        self.words[index] = new
        self.enabled = enabled
        self.applied += 1
        return True

    @property
    def enabled_channels(self) -> tuple[int, ...]:
        return tuple(c for c in range(self.channels) if self.keep(c))
