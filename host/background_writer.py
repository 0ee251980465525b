"""A thread that does a recording's file writes, so the thread that decodes the stream never
waits on the disk.

Why: a disk that sustains the rate on average still stalls for a while now and then (the
page cache writing back, another job's I/O on a shared disk, the once-a-second sync). A
recorder that writes in its decoding loop stops decoding for as long, the receive queue
grows, and at 1536 channels (92 MB/s) a few seconds of it lose datagrams. Here the loop only
copies each block into memory and hands whole buffers over; this thread makes large
positioned writes (``os.pwrite``, megabytes each) and the syncs, in the order they were
handed over.

The queue is bounded in bytes (:data:`MAX_QUEUE_BYTES`; the owner reserves room before it
copies a block). What does not fit is refused — :meth:`BackgroundWriter.reserve` returns
False and counts it in :attr:`WriterStats.refused_bytes` — and the owner records those sweeps
as a loss (:class:`~spikeforge.host.openephys.OpenEphysWriter` lists and zero-fills them like
a link loss). Bookkeeping that keeps the files consistent (sample numbers, headers) is taken
``always``, past the bound: it is a small fraction of the samples (16 bytes a sweep).

A write that fails in the thread (a full disk) stops it: the jobs after it are discarded and
the error (the same ``OSError``, errno kept) is raised in the owner's thread by the next
:meth:`reserve`, :meth:`submit` or :meth:`drain`.
"""

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BackgroundWriter", "WriterStats", "MAX_QUEUE_BYTES", "CHUNK_BYTES"]

#: Bytes reserved (copied, waiting to be written) at most: ~5.8 s of 1536 raw channels.
MAX_QUEUE_BYTES = 512 * 2**20
#: Owners hand a file's staged bytes over once this many are waiting (and at each flush).
CHUNK_BYTES = 4 * 2**20


@dataclass
class WriterStats:
    """What the writer thread did (``spikeforge.json`` keeps them under ``writer``)."""

    max_queue_bytes: int = 0
    queue_peak_bytes: int = 0     #: most bytes reserved (copied, not yet written) at once
    refused_bytes: int = 0        #: bytes refused because the queue was full (a loss)
    refused_blocks: int = 0       #: reservations refused


class BackgroundWriter:
    """Runs file jobs in a thread, in order (see the module docstring)."""

    def __init__(self, max_queue_bytes: int = MAX_QUEUE_BYTES, name: str = "recording") -> None:
        self.stats = WriterStats(max_queue_bytes=max_queue_bytes)
        self._reserved = 0
        self._jobs: collections.deque[tuple[Callable[[], object], int]] = collections.deque()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)     # a job is waiting, or stop
        self._idle = threading.Condition(self._lock)     # the queue ran empty
        self._busy = False
        self._stop = False
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"spikeforge-writer-{name}")
        self._thread.start()

    @property
    def queued_bytes(self) -> int:
        """Bytes reserved and not yet written."""
        return self._reserved

    def reserve(self, size: int, *, always: bool = False) -> bool:
        """Room for ``size`` bytes the owner is about to hand over: True if taken. False (the
        queue holds :attr:`WriterStats.max_queue_bytes`) is counted as refused; the owner
        must treat the data as lost. ``always``: take it past the bound (bookkeeping)."""
        self.check()
        with self._lock:
            stats = self.stats
            if not always and self._reserved + size > stats.max_queue_bytes:
                stats.refused_bytes += size
                stats.refused_blocks += 1
                return False
            self._reserved += size
            stats.queue_peak_bytes = max(stats.queue_peak_bytes, self._reserved)
            return True

    def submit(self, job: Callable[[], object], reserved: int = 0) -> None:
        """Run ``job()`` in the thread after those submitted before; ``reserved``: bytes of
        earlier :meth:`reserve` calls it carries, released once it has run."""
        self.check()
        with self._lock:
            self._jobs.append((job, reserved))
            self._work.notify()

    def drain(self) -> None:
        """Wait until every job submitted so far has run; raise the thread's failure."""
        with self._lock:
            while (self._jobs or self._busy) and self._failure is None:
                self._idle.wait()
        self.check()

    def check(self) -> None:
        """Raise the error a job failed with, if one did."""
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Run what is queued, then end the thread (raises the thread's failure)."""
        try:
            self.drain()
        finally:
            with self._lock:
                self._stop = True
                self._work.notify()
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._busy = False
                if not self._jobs:
                    self._idle.notify_all()
                while not self._jobs and not self._stop:
                    self._work.wait()
                if not self._jobs:
                    return
                job, reserved = self._jobs.popleft()
                self._busy = True
            try:
                if self._failure is None:
                    job()
            except BaseException as exc:  # noqa: BLE001 - handed to the owner's thread
                self._failure = exc
            finally:
                with self._lock:
                    self._reserved -= reserved
