"""A restart prior on disk: the ``.npy`` file ``spikeforge learn-prior`` writes and
``spikeforge record --restart-prior`` loads into a ``codec_v2.restart_prior`` build.

The file holds one integer array, ``(contexts, SYMBOLS + 1)`` cumulative frequencies at
CDF_STATE_BITS (:func:`~spikeforge.firmware.compression_v2.restart_tables`). What it is
checked against (the build's coder) is known only once the device is identified, so
:func:`read_prior` checks the file and :meth:`RestartPrior.check` the fit.
"""

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.firmware.compression_v2 import CodecV2Config, restart_tables
from spikeforge.firmware.errors import ConfigError

from .sample_files import RecordingFileError

__all__ = ["RestartPrior", "read_prior", "write_prior"]


@dataclass(frozen=True)
class RestartPrior:
    """A restart prior and where it came from: ``source`` (the file) and ``sha256`` (of
    the file's bytes), which the recording's spikeforge.json keeps."""

    rows: np.ndarray
    source: str
    sha256: str

    def check(self, codec: CodecV2Config) -> None:
        """Raise :class:`ConfigError` naming the file if the rows are not a prior for
        ``codec`` (its contexts, rising rows)."""
        try:
            restart_tables(codec, self.rows)
        except ConfigError as exc:
            raise ConfigError(f"restart prior {self.source}: {exc}") from None

    def facts(self) -> dict[str, Any]:
        """What spikeforge.json says about the prior."""
        return {"source": self.source, "sha256": self.sha256,
                "contexts": int(self.rows.shape[0])}


def read_prior(path: str | Path) -> RestartPrior:
    """The prior in ``path`` (a ``.npy`` file of integer rows); a missing or unreadable
    file, or one that holds no 2-d integer array, is a :class:`RecordingFileError`
    (exit code 2) that names it and the fix."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordingFileError(f"restart prior {path} does not exist; learn one with "
                                 "`spikeforge learn-prior REC ... --out FILE.npy`") from None
    except OSError as exc:
        raise RecordingFileError(f"cannot read restart prior {path}: "
                                 f"{exc.strerror or exc}") from None
    if not data.startswith(b"\x93NUMPY"):
        raise RecordingFileError(f"restart prior {path} is not a .npy array (no NumPy "
                                 "header); learn one with `spikeforge learn-prior`")
    try:
        rows = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise RecordingFileError(f"restart prior {path} is not a .npy array ({exc}); learn "
                                 "one with `spikeforge learn-prior`") from None
    if not isinstance(rows, np.ndarray) or rows.ndim != 2 \
            or not np.issubdtype(rows.dtype, np.integer):
        raise RecordingFileError(f"restart prior {path} holds {getattr(rows, 'dtype', '?')} "
                                 f"{getattr(rows, 'shape', '')}, not 2-d integer rows (one "
                                 "per context table); learn one with `spikeforge learn-prior`")
    return RestartPrior(rows.astype(np.int64), str(path), hashlib.sha256(data).hexdigest())


def write_prior(path: str | Path, rows: np.ndarray) -> RestartPrior:
    """Write ``rows`` to ``path`` (``.npy``, int64) and return it as read back."""
    path = Path(path)
    with path.open("wb") as out:     # np.save(path) would append .npy to another suffix
        np.save(out, np.asarray(rows, dtype=np.int64), allow_pickle=False)
    return read_prior(path)
