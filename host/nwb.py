"""Exports a spikeforge recording (Open Ephys binary folder) to NWB, with pynwb.

``spikeforge export --nwb OUT.nwb RECORDING``. The samples become an ``ElectricalSeries``
(int16 with ``conversion`` to volts, so no copy is rescaled), one electrode per channel on
one ``Device`` that carries the device configuration, and every stretch of lost samples
(zero-filled in the recording) becomes a row of a ``data_loss`` interval table — losses
stay visible in NWB too. pynwb is an optional extra: ``pip install spikeforge[nwb]``.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError

from .openephys import MICROVOLTS_PER_BIT

__all__ = ["export_nwb", "NWBExportError"]


class NWBExportError(SpikeforgeError):
    exit_code = 5


def _recording_folder(root: Path) -> Path:
    found = sorted(root.glob("**/structure.oebin"))
    if not found:
        raise NWBExportError(
            f"{root} is not a spikeforge recording (no structure.oebin below it); pass the "
            "folder given to `spikeforge record --out`")
    return found[0].parent


def export_nwb(recording: Path, out: Path, *, session_description: str = "spikeforge recording"
               ) -> Path:
    """Write the recording under ``recording`` to the NWB file ``out``; return ``out``."""
    try:
        from hdmf.backends.hdf5.h5_utils import H5DataIO
        from pynwb import NWBHDF5IO, NWBFile
        from pynwb.ecephys import ElectricalSeries
    except ImportError:
        raise NWBExportError(
            "NWB export needs pynwb: pip install 'spikeforge[nwb]' (or `pip install pynwb`)"
        ) from None

    folder = _recording_folder(Path(recording))
    structure = json.loads((folder / "structure.oebin").read_text())
    stream = structure["continuous"][0]
    meta = json.loads((folder / "spikeforge.json").read_text())
    config = SystemConfig.from_dict(meta["device"])
    continuous = folder / "continuous" / stream["folder_name"].rstrip("/")
    samples = np.memmap(continuous / "continuous.dat", dtype="<i2", mode="r")
    samples = samples[: len(samples) // config.channels * config.channels]
    samples = samples.reshape(-1, config.channels)
    sample_numbers = np.load(continuous / "sample_numbers.npy", mmap_mode="r")
    first_sample = int(sample_numbers[0]) if len(sample_numbers) else 0

    created = datetime.fromtimestamp((folder / "structure.oebin").stat().st_mtime, UTC)
    nwb = NWBFile(session_description=session_description, identifier=str(folder.resolve()),
                  session_start_time=created)
    device = nwb.create_device(name="spikeforge", description=json.dumps(config.to_dict()))
    group = nwb.create_electrode_group(name="channels", description="spikeforge channels",
                                       location="unknown", device=device)
    for channel in range(config.channels):
        nwb.add_electrode(group=group, location="unknown", id=channel)
    region = nwb.create_electrode_table_region(list(range(config.channels)), "all channels")
    nwb.add_acquisition(ElectricalSeries(
        name="ElectricalSeries", data=H5DataIO(np.asarray(samples), chunks=True),
        electrodes=region, starting_time=first_sample / config.sample_rate_hz,
        rate=float(config.sample_rate_hz), conversion=MICROVOLTS_PER_BIT * 1e-6,
        description="raw samples, int16; multiply by conversion for volts",
    ))
    losses = nwb.create_time_intervals(
        name="data_loss", description="samples lost on the way (zero-filled in the data)")
    losses.add_column(name="samples", description="number of samples lost")
    for loss in meta.get("losses", []):
        start = loss["first_sample"] / config.sample_rate_hz
        losses.add_row(start_time=start,
                       stop_time=start + loss["samples"] / config.sample_rate_hz,
                       samples=loss["samples"])
    with NWBHDF5IO(str(out), "w") as io:
        io.write(nwb)
    return Path(out)
