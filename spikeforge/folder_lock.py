"""One build at a time per cache folder, across processes.

Board builds (:mod:`spikeforge.boards.build`) and Verilator builds
(:mod:`spikeforge.sim.runner`) are cached in folders named by the digest of what they build.
Two processes — two CI workers, or a user's `make sim` beside `make test` — that build the
same design would otherwise write into one folder at once.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["locked_folder"]


@contextlib.contextmanager
def locked_folder(directory: Path) -> Iterator[None]:
    """Hold ``<directory>.lock`` (beside the folder) while the body runs.

    An advisory ``flock``: released by the OS if the process dies, so it never goes stale.
    (Not on Windows, where concurrent builds of one design are left to the user.)
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(directory.parent / (directory.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
