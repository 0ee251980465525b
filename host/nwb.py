"""Exports a spikeforge recording (Open Ephys binary folder) to NWB, with pynwb.

``spikeforge export --nwb OUT.nwb RECORDING``. The samples become an ``ElectricalSeries``
(int16 with ``conversion`` to volts, so no copy is rescaled) over the channels the
recording holds (those the channel mask enabled), one electrode per device channel (its id
the channel number) on one ``Device`` that carries the device configuration, and every
stretch of lost samples (zero-filled in the recording) becomes a row of a ``data_loss``
interval table — losses stay visible in NWB too.

Spikes the device detected (``spikeforge-detections/``) go to the ``ecephys`` processing
module: one ``SpikeEventSeries`` per channel that fired, ``channel_NNNN`` (the
conditioned snippets, peak at column ``max_snippet_pre``, in volts through ``conversion``)
and a ``spike_detections`` table with one row per event (sample number, time, channel, peak,
samples before the peak), in recording order. pynwb is an optional extra:
``pip install spikeforge[nwb]``.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError

from .errors import ExitCode
from .openephys import MICROVOLTS_PER_BIT

__all__ = ["export_nwb", "NWBExportError"]


class NWBExportError(SpikeforgeError):
    exit_code = ExitCode.ENVIRONMENT


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
        from hdmf.common import VectorData
        from pynwb import NWBHDF5IO, NWBFile
        from pynwb.ecephys import ElectricalSeries
        from pynwb.epoch import TimeIntervals
    except ImportError:
        raise NWBExportError(
            "NWB export needs pynwb: pip install 'spikeforge[nwb]' (or `pip install pynwb`)"
        ) from None

    folder = _recording_folder(Path(recording))
    structure = json.loads((folder / "structure.oebin").read_text())
    stream = structure["continuous"][0]
    # mode events+lfp: the LFP stream is the entry named "lfp" (host.openephys writes it)
    lfp = next((folder / "continuous" / entry["folder_name"].rstrip("/")
                for entry in structure["continuous"] if entry.get("stream_name") == "lfp"),
               None)
    meta = json.loads((folder / "spikeforge.json").read_text())
    config = SystemConfig.from_dict(meta["device"])
    continuous = folder / "continuous" / stream["folder_name"].rstrip("/")
    data_file = continuous / "continuous.dat"
    samples = (np.memmap(data_file, dtype="<i2", mode="r") if data_file.stat().st_size
               else np.zeros(0, dtype="<i2"))   # mode events+lfp: no full-rate samples
    # channel mask: the file holds the enabled channels only (all in older recordings)
    enabled = [int(c) for c in meta.get("channels_enabled", range(config.channels))]
    samples = samples[: len(samples) // len(enabled) * len(enabled)]
    samples = samples.reshape(-1, len(enabled))
    sample_numbers = np.load(continuous / "sample_numbers.npy", mmap_mode="r")
    first_sample = int(sample_numbers[0]) if len(sample_numbers) else 0

    created = datetime.fromtimestamp((folder / "structure.oebin").stat().st_mtime, UTC)
    nwb = NWBFile(session_description=session_description, identifier=str(folder.resolve()),
                  session_start_time=created)
    device = nwb.create_device(name="spikeforge", description=json.dumps(config.to_dict()))
    group = nwb.create_electrode_group(name="channels", description="spikeforge channels",
                                       location="unknown", device=device)
    # Every channel is an electrode (row = id = channel number; the detector sees them all);
    # the ElectricalSeries refers to the recorded (enabled) ones.
    for channel in range(config.channels):
        nwb.add_electrode(group=group, location="unknown", id=channel)
    region = nwb.create_electrode_table_region(
        enabled, "all channels" if len(enabled) == config.channels
        else "channels enabled by the channel mask")
    if len(samples) or lfp is None:   # mode events+lfp: no full-rate samples
        nwb.add_acquisition(ElectricalSeries(
            name="ElectricalSeries", data=H5DataIO(np.asarray(samples), chunks=True),
            electrodes=region, starting_time=first_sample / config.sample_rate_hz,
            rate=float(config.sample_rate_hz), conversion=MICROVOLTS_PER_BIT * 1e-6,
            description="raw samples, int16; multiply by conversion for volts",
        ))
    lost = meta.get("losses", [])
    starts = np.array([loss["first_sample"] for loss in lost], dtype=np.int64)
    counts = np.array([loss["samples"] for loss in lost], dtype=np.int64)
    rate = config.sample_rate_hz
    # Whole columns with their dtype, so a recording without losses gets an empty table.
    nwb.add_time_intervals(TimeIntervals(
        name="data_loss", description="samples lost on the way (zero-filled in the data)",
        columns=[VectorData(name="start_time", description="first lost sample, seconds",
                            data=starts / rate),
                 VectorData(name="stop_time", description="after the last lost one, seconds",
                            data=(starts + counts) / rate),
                 VectorData(name="samples", description="number of samples lost",
                            data=counts)]))
    detections = folder / "spikeforge-detections"
    if detections.is_dir():
        _add_detections(nwb, detections, config)
    if lfp is not None:
        _add_lfp(nwb, lfp, config, enabled)
    with NWBHDF5IO(str(out), "w") as io:
        io.write(nwb)
    return Path(out)


def _add_detections(nwb, folder: Path, config: SystemConfig) -> None:
    """The detector's events: per-channel snippet series and one table of every event."""
    from hdmf.common import DynamicTable, VectorData
    from pynwb.ecephys import SpikeEventSeries

    columns = {name: np.load(folder / f"{name}.npy")
               for name in ("sample_numbers", "channels", "peaks", "snippet_pre", "waveforms")}
    numbers = columns["sample_numbers"]
    times = numbers / config.sample_rate_hz
    module = _ecephys_module(nwb)
    peak_column = config.detector.max_snippet_pre
    for channel in np.unique(columns["channels"]):
        rows = columns["channels"] == channel
        module.add(SpikeEventSeries(
            name=f"channel_{int(channel):04d}", data=columns["waveforms"][rows][:, None, :],
            timestamps=times[rows],
            electrodes=nwb.create_electrode_table_region([int(channel)], f"channel {channel}"),
            conversion=MICROVOLTS_PER_BIT * 1e-6,
            description=f"conditioned snippets, int16; the peak at column {peak_column}, "
                        "zero where the device sent a shorter snippet"))
    described = (
        ("sample_number", "device sample number of the peak", numbers),
        ("time", "seconds: sample_number / sample rate", times),
        ("channel", "channel (electrode id)", columns["channels"]),
        ("peak", "conditioned value at the peak, int16 (x conversion for volts)",
         columns["peaks"]),
        ("snippet_pre", "snippet samples the device sent before the peak",
         columns["snippet_pre"]))
    module.add(DynamicTable(
        name="spike_detections", description="every event the device's detector sent",
        columns=[VectorData(name=name, description=text, data=np.asarray(data))
                 for name, text, data in described]))


# -- LFP (mode events+lfp): the recording's second continuous stream --


def _ecephys_module(nwb):
    if "ecephys" in nwb.processing:
        return nwb.processing["ecephys"]
    return nwb.create_processing_module(
        name="ecephys", description="processed on the device (spikeforge detector, LFP)")


def _add_lfp(nwb, stream: Path, config: SystemConfig, enabled: list[int]) -> None:
    """The LFP stream (its folder ``stream``) as ``processing/ecephys/LFP/LFP`` (an
    ElectricalSeries at the decimated rate, ``starting_time`` = first decimated sweep / lfp
    rate)."""
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from pynwb.ecephys import LFP, ElectricalSeries

    channels = len(enabled)
    region = nwb.create_electrode_table_region(enabled, "channels of the LFP stream")
    samples = np.fromfile(stream / "continuous.dat", dtype="<i2")
    samples = samples[: len(samples) // channels * channels].reshape(-1, channels)
    numbers = np.load(stream / "sample_numbers.npy")
    rate = config.lfp_rate_hz if config.lfp_rate_hz else 1.0
    series = ElectricalSeries(
        name="LFP", data=H5DataIO(samples, chunks=True) if len(samples) else samples,
        electrodes=region, starting_time=int(numbers[0]) / rate if len(numbers) else 0.0,
        rate=float(rate), conversion=MICROVOLTS_PER_BIT * 1e-6,
        description=f"LFP: CIC decimator factor {config.lfp.factor if config.lfp else '?'}, "
                    f"order {config.lfp.order if config.lfp else '?'}, int16; multiply by "
                    "conversion for volts")
    _ecephys_module(nwb).add(LFP(electrical_series=series, name="LFP"))
