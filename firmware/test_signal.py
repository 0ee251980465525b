"""What the built-in test-signal source produces, defined once for the gateware and the model.

For sweep ``n`` (the sample number) and channel ``c`` the source emits::

    r      = mix32(seed ^ ((n << CHANNEL_FIELD_BITS) | c))     (uint32, see MIX_ROUNDS)
    noise  = ((r & 0xFF) + ((r >> 8) & 0xFF) - 255) >> noise_shift      (triangular)
    dc     = ((c & 7) - 4) << 6
    spike  = (SPIKE_TEMPLATE[phase] * (4 + (c & 3))) >> 3      (while a spike is running)
    sample = dc + noise + spike                                (always fits int16)

A spike starts on a channel that is not already inside one when ``(r >> 16) <
spike_start_threshold``; it then runs for ``len(SPIKE_TEMPLATE)`` samples. The trough of the
template (its most negative sample) is ``SPIKE_PEAK_OFFSET`` samples after the start; the
golden model reports that sample as the spike's true time.

The pattern of channel ``c`` does not depend on how many channels the build has. It repeats
every ``2**(32 - CHANNEL_FIELD_BITS)`` sweeps (about 140 s at 30 kS/s).
"""

__all__ = ["SPIKE_TEMPLATE", "SPIKE_PEAK_OFFSET", "CHANNEL_FIELD_BITS", "MIX_ROUNDS"]

#: Extracellular action potential shape in LSB (0.195 µV/LSB): a small positive pre-phase,
#: a trough of about -190 µV, and a slower positive repolarisation.
SPIKE_TEMPLATE = (
    0, -1, -10, -40, -78, -144, -381, -784, -990, -730, -259, 74, 230, 299, 320, 301,
    249, 182, 118, 67, 34, 15, 6, 2, 1, 0, 0, 0, 0, 0, 0, 0,
)
SPIKE_PEAK_OFFSET = SPIKE_TEMPLATE.index(min(SPIKE_TEMPLATE))

#: The channel number occupies the low bits of the hash input.
CHANNEL_FIELD_BITS = 10

#: mix32 is a sequence of rounds, each ``x ^= x >> shift`` then ``x += x << mul_shift``
#: (mod 2**32), with a last plain ``x ^= x >> FINAL_SHIFT``: shifts, XORs and adders only,
#: so the gateware needs no multiplier.
MIX_ROUNDS = ((16, 3), (11, 7), (15, 5))
FINAL_SHIFT = 13
