"""Bit-exact golden models of the conditioner and the detector.

:func:`condition` models :class:`spikeforge.hdl.conditioner.Conditioner`, :func:`detect`
the per-channel detection of :class:`spikeforge.hdl.detector.Detector` (which events are
emitted, in which sweep, with which snippet), and :func:`admit_events` its output side
(which emitted events fit the queue and buffer, and which are dropped whole and counted).

Both recursions are sequential in time, so the models loop over sweeps and are vectorised
over channels within each sweep (int64 arithmetic, ``>>`` is the same floor shift as the
gateware's arithmetic shift). The arithmetic is specified in
:mod:`spikeforge.firmware.detection`.
"""

from dataclasses import dataclass, field

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import (
    COEF_BITS,
    EVENT_HEADER_WORDS,
    EXCLUSION_SCORE_BITS,
    FILTER_FRAC_BITS,
    NOISE_FRAC_BITS,
    SIGMA_NUM,
    THRESHOLD_SHIFT,
)

__all__ = ["condition", "DetectorParams", "DetectedEvents", "detect", "event_words",
           "admit_events", "copy_write_cycles", "Admission", "DETECTOR_LATENCY", "EMIT_LATENCY",
           "detector_latency"]

ARMED, SEARCH, DEAD = 0, 1, 2


def condition(config: SystemConfig, samples: np.ndarray) -> np.ndarray:
    """Conditioner output for ``samples`` (shape (sweeps, channels), int16) from reset."""
    det = config.detector
    F = FILTER_FRAC_BITS
    a_hp = det.highpass_coefficient(config.sample_rate_hz)
    a_lp = det.lowpass_coefficient(config.sample_rate_hz)
    x_all = np.asarray(samples, dtype=np.int64)
    out = np.empty(x_all.shape, dtype=np.int16)
    channels = x_all.shape[1]
    d = np.zeros(channels, dtype=np.int64)
    h = np.zeros(channels, dtype=np.int64)
    lp = np.zeros(channels, dtype=np.int64)
    lp2 = np.zeros(channels, dtype=np.int64)
    for n in range(x_all.shape[0]):
        x = x_all[n]
        d += ((x << F) - d) >> det.dc_shift
        y1 = x - (d >> F)
        h += (a_hp * ((y1 << F) - h)) >> COEF_BITS
        y2 = y1 - (h >> F)
        lp += (a_lp * ((y2 << F) - lp)) >> COEF_BITS
        y3 = lp >> F
        lp2 += (a_lp * ((y3 << F) - lp2)) >> COEF_BITS
        out[n] = np.clip(lp2 >> F, -32768, 32767)
    return out


@dataclass(frozen=True)
class DetectorParams:
    """The run-time parameters (register values) of a detection run."""

    k16: np.ndarray          #: threshold factor per channel, in sixteenths
    polarity: int            #: 1 negative, 2 positive, 3 both
    dead_samples: int
    snippet_pre: int
    snippet_post: int
    neo: bool = False        #: detect on the nonlinear energy operator

    @classmethod
    def from_config(cls, config: SystemConfig) -> "DetectorParams":
        det = config.detector
        return cls(np.full(config.channels, det.threshold_k16, dtype=np.int64),
                   det.polarity_code, det.dead_samples, det.snippet_pre, det.snippet_post,
                   det.neo)


@dataclass
class DetectedEvents:
    """Events in order of emission (sweep-major, then channel), as the detector emits them.

    ``emit_sweep`` is the sweep in which the event was decided, ``sweep`` the timestamp
    (sweep of the peak), ``peak`` the conditioned value at the peak, ``snippets`` shape
    (events, pre + 1 + post).
    """

    emit_sweep: np.ndarray
    channel: np.ndarray
    sweep: np.ndarray
    peak: np.ndarray
    snippets: np.ndarray
    pre: int
    post: int
    noise: np.ndarray = field(default_factory=lambda: np.zeros(0))  #: final tracker state
    #: With ``detect(..., trace=True)``: per sweep and channel, the threshold the score was
    #: compared with and whether the channel was armed (could cross); else empty.
    threshold_trace: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    armed_trace: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))

    def __len__(self) -> int:
        return len(self.channel)


def _score(x: np.ndarray, polarity: int) -> np.ndarray:
    if polarity == 1:
        return -x
    if polarity == 2:
        return x
    return np.abs(x)  # both (3); also 0, where nothing crosses


def detect(config: SystemConfig, filtered: np.ndarray,
           params: DetectorParams | None = None, *, trace: bool = False) -> DetectedEvents:
    """Detection on conditioned samples (shape (sweeps, channels)) from reset.

    ``trace`` also records the threshold and the armed state per sample (for studies of
    which spikes are missed and why; it does not change the events).

    With ``config.detector.exclusion`` every event is first a candidate of its channel
    (score saturated to ``EXCLUSION_SCORE_BITS``, age in sweeps since its peak); it is
    decided in the sweep its age reaches ``D = exclusion_delay`` and emitted then unless a
    neighbour's candidate beats it. Each channel's *record* (its latest candidate's score
    and window code) is what its neighbours compare with: a channel c deciding in sweep n
    sees the records of lower channels as they are after sweep n and of higher channels as
    they were after sweep n-1 (the gateware's channel order). A neighbour j beats c if its
    record is in the window (ages ``D-w .. D+w`` as of sweep n for j < c, ``D-1-w .. D-1+w``
    as of n-1 for j > c: peaks at most w apart either way) and its score is larger, or equal
    with j < c. The channel stays dead until its candidate is decided.

    With ``config.detector.echo_ratio`` an ending search is no event (nor candidate) if the
    channel's last event, fewer than ``echo_samples`` samples before, scored at least
    ``echo_ratio`` times its score (both saturated); with ``noise_hold`` the tracker keeps
    its value unless the channel is armed and the score is not above the threshold."""
    det = config.detector
    p = DetectorParams.from_config(config) if params is None else params
    pre = min(p.snippet_pre, det.max_snippet_pre)
    post = min(p.snippet_post, det.max_snippet_post)
    polarity = p.polarity & 3
    window = det.align_samples
    emit_at = window - 1  # the extremum is known; the copier waits for the post samples
    y_all = np.asarray(filtered, dtype=np.int64)
    sweeps, channels = y_all.shape
    k16 = np.asarray(p.k16, dtype=np.int64)
    step = det.noise_step

    noise = np.full(channels, det.noise_init_lsb << NOISE_FRAC_BITS, dtype=np.int64)
    phase = np.zeros(channels, dtype=np.int64)
    count = np.zeros(channels, dtype=np.int64)
    peak_value = np.zeros(channels, dtype=np.int64)
    peak_score = np.zeros(channels, dtype=np.int64)
    peak_count = np.zeros(channels, dtype=np.int64)
    previous = np.zeros(channels, dtype=np.int64)   # y[n-1]
    before = np.zeros(channels, dtype=np.int64)     # y[n-2]
    neo = bool(p.neo)
    emitted: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    threshold_trace = np.zeros((sweeps if trace else 0, channels), dtype=np.int64)
    armed_trace = np.zeros((sweeps if trace else 0, channels), dtype=bool)
    score_max = (1 << EXCLUSION_SCORE_BITS) - 1   # scores as exclusion and echo compare them
    exclusion = det.exclusion
    if exclusion:
        table = det.exclusion_table(channels)
        slots = max(1, max(len(row) for row in table))
        neighbour = np.full((channels, slots), -1, dtype=np.int64)
        for c, row in enumerate(table):
            neighbour[c, :len(row)] = row
        delay, age_max = det.exclusion_delay, det.exclusion_age_max
        code_low, code_max = det.exclusion_code_low, det.exclusion_code_max
        w = det.exclusion_samples
        pending = np.zeros(channels, dtype=bool)
        age = np.full(channels, age_max, dtype=np.int64)
        candidate = np.zeros(channels, dtype=np.int64)
        record_code = np.full(channels, code_max, dtype=np.int64)
        record_score = np.zeros(channels, dtype=np.int64)
    echo = det.echo
    if echo:
        echo_score = np.zeros(channels, dtype=np.int64)
        echo_age = np.full(channels, det.echo_samples, dtype=np.int64)

    for n in range(sweeps):
        y = y_all[n]
        if neo:
            # psi[n] = y[n-1]^2 - y[n] y[n-2] belongs to sample n-1; scaled and saturated.
            signal = np.clip((previous * previous - y * before) >> det.neo_shift,
                             -32768, 32767)
            score, centre = signal, previous
        else:
            signal, centre = y, y
            score = _score(y, polarity)
        before, previous = previous, y
        threshold = (noise * k16 * SIGMA_NUM) >> THRESHOLD_SHIFT
        magnitude = np.abs(signal) << NOISE_FRAC_BITS
        tracked = np.where(magnitude > noise, noise + step,
                           np.where(magnitude < noise, np.maximum(noise - step, 0), noise))

        armed = phase == ARMED
        if det.noise_hold:
            # The tracker learns only from samples that could have been noise: the channel
            # armed and the score not above the threshold.
            tracked = np.where(armed & ~(score > threshold), tracked, noise)
        noise = tracked
        if trace:
            threshold_trace[n] = threshold
            armed_trace[n] = armed
        searching = phase == SEARCH
        dead = phase == DEAD
        cross = armed & (score > threshold) & (polarity != 0)
        next_count = count + 1
        better = searching & (next_count < window) & (score > peak_score)
        emit = searching & (next_count == emit_at)

        new_peak_value = np.where(cross | better, centre, peak_value)
        peak_score = np.where(cross | better, score, peak_score)
        new_peak_count = np.where(cross, 0, np.where(better, next_count, peak_count))
        end_dead = dead & (next_count >= p.dead_samples)
        ended = emit  # the search ends (the phase moves on) whether or not it is an echo
        if echo:
            saturated = np.minimum(peak_score, score_max)
            emit = emit & ~((echo_age < det.echo_samples)
                            & (echo_score >= det.echo_ratio * saturated))
            echo_score = np.where(emit, saturated, echo_score)
            # The age as the channel's next sample sees it: samples since the event.
            echo_age = np.where(emit, 1, np.minimum(echo_age + 1, det.echo_samples))
        if exclusion:
            age = np.where(emit, next_count - new_peak_count + int(neo),
                           np.minimum(age + 1, age_max))
            candidate = np.where(emit, np.minimum(peak_score, score_max), candidate)
            pending |= emit
            decide = pending & (age == delay)
            old_code, old_score = record_code, record_score
            record_code = np.clip(age - code_low + 1, 0, code_max)
            record_score = candidate
            if decide.any():
                idx = np.flatnonzero(decide)
                j = neighbour[idx]
                lower = j < idx[:, None]
                jj = np.maximum(j, 0)
                code = np.where(lower, record_code[jj], old_code[jj])
                theirs = np.where(lower, record_score[jj], old_score[jj])
                in_window = np.where(lower, (code >= 2) & (code <= 2 * w + 2),
                                     (code >= 1) & (code <= 2 * w + 1))
                mine = candidate[idx][:, None]
                beats = (j >= 0) & in_window & ((theirs > mine)
                                                | (lower & (theirs == mine)))
                kept = idx[~beats.any(axis=1)]
                if len(kept):
                    emitted.append((n, kept, n - delay + np.zeros(len(kept), np.int64),
                                    new_peak_value[kept]))
            pending &= ~decide
            end_dead &= ~pending
        elif emit.any():
            idx = np.flatnonzero(emit)
            ts = n - (next_count[idx] - new_peak_count[idx]) - int(neo)
            emitted.append((n, idx, ts, new_peak_value[idx]))
        emit_phase = DEAD if (p.dead_samples or exclusion) else ARMED
        new_phase = np.where(cross, SEARCH, np.where(ended, emit_phase,
                             np.where(end_dead, ARMED, phase)))
        new_count = np.where(cross | ended, 0, np.where(searching | dead, next_count, count))
        phase, count = new_phase, new_count
        peak_value, peak_count = new_peak_value, new_peak_count

    length = pre + 1 + post
    if emitted:
        emit_sweep = np.concatenate([np.full(len(e[1]), e[0]) for e in emitted])
        channel = np.concatenate([e[1] for e in emitted])
        sweep = np.concatenate([e[2] for e in emitted])
        peak = np.concatenate([e[3] for e in emitted])
        rows = sweep[:, None] + np.arange(-pre, post + 1)[None, :]
        snippets = y_all[np.clip(rows, 0, sweeps - 1), channel[:, None]]
        snippets[rows < 0] = 0  # never-written ring slots read as zero after reset
    else:
        emit_sweep = channel = sweep = peak = np.zeros(0, dtype=np.int64)
        snippets = np.zeros((0, length), dtype=np.int64)
    return DetectedEvents(emit_sweep.astype(np.int64), channel.astype(np.int64),
                          sweep.astype(np.int64), peak.astype(np.int64),
                          snippets.astype(np.int64), pre, post, noise, threshold_trace,
                          armed_trace)


def event_words(events: DetectedEvents, index: int) -> list[int]:
    """The 16-bit words of event ``index`` as the detector's output stream carries them."""
    ts = int(events.sweep[index]) & 0xFFFFFFFF
    words = [events.pre | (events.post << 8), ts & 0xFFFF, ts >> 16,
             int(events.channel[index]), int(events.peak[index]) & 0xFFFF]
    words += [int(v) & 0xFFFF for v in events.snippets[index]]
    assert len(words) == EVENT_HEADER_WORDS + events.pre + 1 + events.post
    return words


def snippet_complete_cycle(events: DetectedEvents, sweep_start: np.ndarray) -> np.ndarray:
    """Per event, the first cycle its snippet is complete: the cycle after channel 0 of
    sweep ``sweep + post + 1`` entered the detector (``sweep_start[n]``: the cycle it did);
    a huge number if that sweep is not in ``sweep_start``."""
    needed = events.sweep + events.post + 1
    inside = needed < len(sweep_start)
    out = np.full(len(events), np.iinfo(np.int64).max // 2, dtype=np.int64)
    out[inside] = np.asarray(sweep_start, dtype=np.int64)[needed[inside]] + 1
    return out


@dataclass
class Admission:
    """Which events the detector's output side kept: ``kept[i]`` for event i, the number
    dropped, and the cycle each kept event's first word is written to the buffer (-1 for an
    event not copied: dropped, or its snippet never completed)."""

    kept: np.ndarray
    dropped: int
    first_word_cycle: np.ndarray


def copy_write_cycles(take: int, words: int, ring_busy: np.ndarray | None) -> list[int]:
    """The cycles in which the copier writes the ``words`` words of an event taken in cycle
    ``take`` (see :func:`admit_events`)."""
    header = [take + 1 + w for w in range(EVENT_HEADER_WORDS)]
    if ring_busy is None:
        return header + [take + 1 + w for w in range(EVENT_HEADER_WORDS, words)]
    cycles = []
    read = take + EVENT_HEADER_WORDS
    while len(cycles) < words - EVENT_HEADER_WORDS:
        if not (read < len(ring_busy) and ring_busy[read]):
            cycles.append(read + 1)
        read += 1
    return header + cycles


def admit_events(config: SystemConfig, events: DetectedEvents, emit_cycle: np.ndarray,
                 complete_cycle: np.ndarray, ready: np.ndarray | None = None,
                 ring_busy: np.ndarray | None = None) -> Admission:
    """The queue/buffer admission of the detector's output side, cycle by cycle.

    ``emit_cycle[i]`` is the cycle event i reaches the admission logic; ``complete_cycle[i]``
    the first cycle in which its snippet is complete in the ring (the cycle after sweep ``sweep
    + post + 1`` started: see :func:`snippet_complete_cycle`); ``ready[t]`` the consumer's ready
    in cycle t (always ready if None). An event is admitted only if the header queue has room
    and the output buffer can take all of its words (space is reserved at admission and freed as
    words leave); otherwise it is dropped whole.

    Timing (as :class:`spikeforge.hdl.detector.Detector`): a queued event can be taken by the
    copier from the cycle after it was written; the copier takes it in a cycle where it is idle
    and the snippet is complete, writes its words to the buffer in the following ``words``
    cycles, and is idle again in the cycle after the last word. A word written in cycle t can
    leave from t+1.

    ``ring_busy[t]`` (a single-port SPRAM ring: the cycles in which a sample is written to
    it, one cycle after the sample entered the detector; None for a block RAM ring, never
    busy): the copier then writes the header words in the 5 cycles after taking the event,
    reads snippet word j in the j-th cycle not busy from the cycle of the last header word
    on, and writes it in the cycle after its read (with a never-busy ring, exactly the
    word-per-cycle timing above).
    """
    det = config.detector
    words = EVENT_HEADER_WORDS + events.pre + 1 + events.post
    capacity = det.event_buffer_words
    queue_depth = det.event_queue
    count = len(events)
    kept = np.zeros(count, dtype=bool)
    first_word = np.full(count, -1, dtype=np.int64)
    dropped = 0
    if count == 0:
        return Admission(kept, 0, first_word)
    end = int(emit_cycle.max()) + (count + 2) * (words + 2) + 8
    if ring_busy is not None:
        end = max(end, len(ring_busy)) + (count + 2) * (words + 2)
    if ready is None:
        ready = np.ones(end, dtype=bool)
    queue: list[tuple[int, int]] = []   # (index, readable from cycle)
    copier_busy_until = -1               # last cycle the copier writes a word
    copier_idle_from = 0
    buffer_words = 0                     # words in the output buffer
    writes: dict[int, int] = {}          # cycle -> words written that cycle (0/1)
    reserved = 0
    next_event = 0
    for t in range(max(end, len(ready))):
        # Admission, with registers as they are at the start of cycle t.
        admit_now = 0
        if next_event < count and emit_cycle[next_event] == t:
            if len(queue) < queue_depth and reserved + words <= capacity:
                kept[next_event] = True
                queue.append((next_event, t + 1))
                admit_now = words
            else:
                dropped += 1
            next_event += 1
        # Copier takes the head of the queue when idle.
        if (t >= copier_idle_from and queue and queue[0][1] <= t
                and complete_cycle[queue[0][0]] <= t):
            index, _ = queue.pop(0)
            first_word[index] = t + 1
            word_cycles = copy_write_cycles(t, words, ring_busy)
            copier_busy_until = word_cycles[-1]
            copier_idle_from = word_cycles[-1] + 1
            for cycle in word_cycles:
                writes[cycle] = 1
        popped = 1 if (buffer_words > 0 and t < len(ready) and ready[t]) else 0
        buffer_words += writes.pop(t, 0) - popped
        reserved += admit_now - popped
        if next_event >= count and not queue and t > copier_busy_until and buffer_words == 0:
            break
    return Admission(kept, dropped, first_word)


#: Cycles from a sample entering the detector to its admission decision (state read, state
#: registered, products, decision: :attr:`spikeforge.hdl.detector.Detector.LATENCY`).
DETECTOR_LATENCY = 3
#: Cycles from a sample leaving the source to its detection stage (conditioner latency 5,
#: one pipeline stage per filter; detector 3): an event decided on sample (n, c) is
#: admitted in cycle ``n * cycles_per_sample + c + SOURCE_LATENCY + EMIT_LATENCY``.
EMIT_LATENCY = 5 + DETECTOR_LATENCY


def detector_latency(config: SystemConfig) -> int:
    """Cycles from a sample entering the detector to its admission decision: 3, and 4 with
    local exclusion (its comparison is a stage of its own: ``Detector.latency``)."""
    return DETECTOR_LATENCY + int(config.detector.exclusion)


@dataclass
class DeviceEvents:
    """The events the acquisition system's detector emits, with their emission cycles and
    word records (what :class:`EventOutput` admits and the framer sends)."""

    events: DetectedEvents
    emit_cycle: np.ndarray
    complete_cycle: np.ndarray
    words: list[list[int]]

    @classmethod
    def none(cls) -> "DeviceEvents":
        """No events (a framer without a detector behind it)."""
        empty = np.zeros(0, dtype=np.int64)
        return cls(DetectedEvents(empty, empty, empty, empty, np.zeros((0, 1), np.int64), 0, 0),
                   empty, empty, [])


def device_events(config: SystemConfig, samples: np.ndarray, source_latency: int
                  ) -> DeviceEvents:
    """Events of the system's conditioner + detector for source ``samples`` from reset
    (none when the configuration does not build the detection path)."""
    if not config.detector.enabled:
        return DeviceEvents.none()
    events = detect(config, condition(config, samples))
    latency = 5 + detector_latency(config)
    emit_cycle = (events.emit_sweep * config.cycles_per_sample + events.channel
                  + source_latency + latency)
    # Channel 0 of sweep n enters the detector detector_latency cycles before its decision.
    sweep_start = (np.arange(samples.shape[0], dtype=np.int64) * config.cycles_per_sample
                   + source_latency + latency - detector_latency(config))
    return DeviceEvents(events, emit_cycle, snippet_complete_cycle(events, sweep_start),
                        [event_words(events, i) for i in range(len(events))])


class EventOutput:
    """The detector's admission queue, copier and buffer, driven by a consumer whose pops
    are reported as they are scheduled (the framer model), in time order.

    Same timing as :func:`admit_events`: admission at the emission cycle against the queue
    level and buffer reservation as they stand at the start of that cycle; the copier takes
    an event in the first cycle it is idle, the event is readable and its snippet complete;
    word j of the event
    taken in cycle c is written in cycle c+1+j and readable from c+2+j.
    """

    def __init__(self, config: SystemConfig, device: DeviceEvents):
        self.capacity = config.detector.event_buffer_words
        self.queue_depth = config.detector.event_queue
        self.emit_cycle = [int(c) for c in device.emit_cycle]
        self.complete_cycle = [int(c) for c in device.complete_cycle]
        self.words = device.words
        self.decided = 0                 # events decided so far (in emission order)
        self.kept: list[int] = []        # indices of admitted events, in order
        self.take_cycle: list[int] = []  # per kept event, the cycle the copier took it
        self.dropped = 0
        self._reserve_log: list[tuple[int, int]] = []  # (cycle, words) of admissions
        self._pops: list[int] = []       # cycles of word pops (non-decreasing)
        self._copier_idle_from = 0

    def next_emission(self) -> int | None:
        return self.emit_cycle[self.decided] if self.decided < len(self.emit_cycle) else None

    def decide_until(self, cycle: int) -> None:
        """Decide every emission at or before ``cycle``; all pops before it must be known."""
        while self.decided < len(self.emit_cycle) and self.emit_cycle[self.decided] <= cycle:
            e = self.emit_cycle[self.decided]
            words = len(self.words[self.decided])
            reserved = (sum(w for c, w in self._reserve_log if c < e)
                        - sum(1 for p in self._pops if p < e))
            in_queue = sum(1 for take in self.take_cycle if take >= e)
            if in_queue < self.queue_depth and reserved + words <= self.capacity:
                take = max(e + 1, self._copier_idle_from,
                           self.complete_cycle[self.decided])
                self.kept.append(self.decided)
                self.take_cycle.append(take)
                self._copier_idle_from = take + words + 1
                self._reserve_log.append((e, words))
            else:
                self.dropped += 1
            self.decided += 1

    def dropped_before(self, cycle: int) -> int:
        kept = set(self.kept)
        return sum(1 for i in range(self.decided)
                   if i not in kept and self.emit_cycle[i] < cycle)

    def emitted_before(self, cycle: int) -> int:
        return sum(1 for c in self.emit_cycle if c < cycle)

    def word_readable(self, kept_position: int, word: int) -> int:
        return self.take_cycle[kept_position] + 2 + word

    def pop(self, cycle: int) -> None:
        self._pops.append(cycle)
