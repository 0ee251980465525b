"""Run-time channel mask: which channels the framer puts into DATA frames."""

from amaranth.hdl import Const, Module, Mux, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig

__all__ = ["ChannelMask", "popcount"]

#: Channels per mask word (the width of the ``CHANNEL_MASK`` register).
WORD_CHANNELS = 32


def popcount(value: Value) -> Value:
    """The number of set bits of ``value``, as a balanced adder tree."""
    terms: list[Value] = [value[i] for i in range(len(value))]
    while len(terms) > 1:
        pairs = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0] if terms else Const(0, 1)


class ChannelMask(wiring.Component):
    """The mask of the channels DATA frames carry, kept in memory as 32-bit words.

    The mask resets to ``config.channel_mask``. A write changes one word; the enabled count
    follows it (popcount of the new word minus that of the old one), so the framer always
    knows the DATA frame length.

    Ports
    -----
    valid, channel : in
        The sample stream into the framer (observed, never stalled). The source is
        channel-serial, so the channel after a sample is known; its mask word is read while
        that sample passes, and ``keep`` is ready in the next sample's own cycle.
    keep : out
        Whether the sample on ``channel`` in this cycle is enabled. Combinational; no
        latency is added to the sample path. Valid from the first cycle after reset (the
        sources' first sample comes two cycles later).
    enabled : out
        Channels enabled (1 .. ``config.channels``).
    index : in
        Word that ``w_data`` writes and ``in_force`` shows (register ``CHANNEL_MASK_INDEX``).
    in_force : out
        The word at ``index`` as it is in force (0 for an index past the channels); valid
        one cycle after ``index`` changes.
    w_en, w_data : in
        Write ``w_data`` to the word at ``index`` (bits past the last channel are cleared).
        Carried out only when ``allow`` is high, ``index`` names a word and at least one
        channel stays enabled; otherwise ignored. ``index`` must be unchanged for the two
        cycles before a write, ``w_data`` for the one cycle before it, and a write must
        not follow another in the next cycle: the old word is read, and both words
        counted, ahead of the write, so that the write's cycle only adds the counts (the
        register bus shows a command's address and value cycles before it pulses
        ``w_en``, and commands are many cycles apart). The word and the count still
        change at the end of the write's own cycle.
    allow : in
        High when the mask may change: the stream is stopped and the framer holds no DATA
        frame, so every frame is built with one mask from start to end.
    """

    def __init__(self, config: SystemConfig):
        self._config = config
        self.words = -(-config.channels // WORD_CHANNELS)
        super().__init__({
            "valid": In(1),
            "channel": In(config.channel_bits),
            "keep": Out(1),
            "enabled": Out(range(config.channels + 1), init=len(config.enabled_channels)),
            "index": In(32),
            "in_force": Out(32),
            "w_en": In(1),
            "w_data": In(32),
            "allow": In(1),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        m.submodules.storage = storage = memory.Memory(
            shape=32, depth=self.words, init=config.channel_mask_words)
        write = storage.write_port()
        ahead = storage.read_port(transparent_for=(write,))
        at_index = storage.read_port(transparent_for=(write,))

        # The word of the channel that comes next: after a sample of channel c, c + 1.
        next_channel = Signal(range(config.channels))
        following = Mux(self.channel == config.channels - 1, 0, self.channel + 1)
        with m.If(self.valid):
            m.d.sync += next_channel.eq(following)
        word_of_next = Mux(self.valid, following, next_channel) // WORD_CHANNELS
        m.d.comb += [
            ahead.addr.eq(word_of_next),
            self.keep.eq(ahead.data.bit_select(self.channel % WORD_CHANNELS, 1)),
        ]

        # Read, write and count at index. The popcounts of the old and the new word and the
        # index check are registered (index and data are stable before a write), so the
        # write's cycle holds only the count's sum and its zero test (on the ECP5 at 1024
        # channels the unregistered decision was the longest path).
        in_range = self.index < self.words
        last_bits = config.channels - (self.words - 1) * WORD_CHANNELS
        valid_bits = Mux(self.index == self.words - 1, (1 << last_bits) - 1, 0xFFFFFFFF)
        new_word = Signal(32)
        old_count = Signal(range(WORD_CHANNELS + 1))
        new_count = Signal(range(WORD_CHANNELS + 1))
        index_named = Signal()
        new_enabled = Signal(range(config.channels + WORD_CHANNELS + 1))
        m.d.comb += [
            at_index.addr.eq(self.index),
            self.in_force.eq(Mux(in_range, at_index.data, 0)),
            new_word.eq(self.w_data & valid_bits),
            new_enabled.eq(self.enabled - old_count + new_count),
            write.addr.eq(self.index),
            write.data.eq(new_word),
        ]
        m.d.sync += [
            old_count.eq(popcount(at_index.data)),
            new_count.eq(popcount(new_word)),
            index_named.eq(in_range),
        ]
        with m.If(self.w_en & self.allow & index_named & (new_enabled != 0)):
            m.d.comb += write.en.eq(1)
            m.d.sync += self.enabled.eq(new_enabled)
        return m
