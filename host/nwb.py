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
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError

from .errors import ExitCode
from .openephys import MICROVOLTS_PER_BIT

__all__ = ["export_nwb", "NWBExportError", "RecordingUnreadable", "DEFAULT_SUBJECT_ID"]

#: The subject id written when none is given: a pseudonym, never a host or user name.
DEFAULT_SUBJECT_ID = "subject-01"


class NWBExportError(SpikeforgeError):
    """NWB export cannot run here (pynwb missing)."""

    exit_code = ExitCode.ENVIRONMENT


class RecordingUnreadable(SpikeforgeError):
    """The folder is no spikeforge recording, or one cut before it held anything."""

    exit_code = ExitCode.USAGE


def _recording_folder(root: Path) -> Path:
    found = sorted(root.glob("**/structure.oebin"))
    if not found:
        raise RecordingUnreadable(
            f"{root} is not a spikeforge recording (no structure.oebin below it); pass the "
            "folder given to `spikeforge record --out`")
    return found[0].parent


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordingUnreadable(
            f"{path} is missing: the recording was cut (the recorder killed) before it "
            f"wrote its {what}; there is nothing to export") from None
    except (OSError, ValueError) as exc:
        raise RecordingUnreadable(f"{path} cannot be read ({exc}); the recording was cut "
                                  f"while writing its {what}") from None


def _appended_rows(path: Path, dtype: str, row_shape: tuple[int, ...] = ()) -> np.ndarray:
    """The rows of a ``.npy`` file the recorder appends to, as far as they reached the disk:
    the body past the header, whatever length the header says (it is rewritten only at each
    flush, so after a cut it may say fewer rows, or the file may be empty)."""
    if not path.is_file():
        return np.zeros((0, *row_shape), dtype=dtype)
    raw = path.read_bytes()
    try:
        with open(path, "rb") as file:
            np.lib.format.read_magic(file)
            np.lib.format.read_array_header_1_0(file)
            header = file.tell()
    except (ValueError, OSError, EOFError):
        return np.zeros((0, *row_shape), dtype=dtype)
    row_bytes = np.dtype(dtype).itemsize * int(np.prod(row_shape, dtype=np.int64))
    rows = (len(raw) - header) // row_bytes
    body = np.frombuffer(raw, dtype=dtype, count=rows * row_bytes // np.dtype(dtype).itemsize,
                         offset=header)
    return body.reshape(rows, *row_shape)


def _continuous(folder: Path, channels: int, rate_hz: float) -> tuple[np.ndarray, int]:
    """The sweeps of one continuous stream on disk (whole rows of ``continuous.dat``) and
    its first sample number (from ``sample_numbers.npy``, else ``timestamps.npy``, else 0:
    a cut before either held a row)."""
    data_file = folder / "continuous.dat"
    size = data_file.stat().st_size if data_file.is_file() else 0
    rows = size // (2 * channels)
    samples = (np.memmap(data_file, dtype="<i2", mode="r", shape=(rows, channels))
               if rows else np.zeros((0, channels), dtype="<i2"))
    numbers = _appended_rows(folder / "sample_numbers.npy", "<i8")
    if len(numbers):
        return samples, int(numbers[0])
    times = _appended_rows(folder / "timestamps.npy", "<f8")
    return samples, int(round(times[0] * rate_hz)) if len(times) else 0


def export_nwb(recording: Path, out: Path, *, session_description: str = "spikeforge recording",
               subject_id: str = DEFAULT_SUBJECT_ID, subject_age: str = "P0D/",
               subject_sex: str = "U", subject_species: str | None = None) -> Path:
    """Write the recording under ``recording`` to the NWB file ``out``; return ``out``.

    A recording cut at any instant (the recorder killed) is exported as far as it reached
    the disk; one cut before it held anything raises :class:`RecordingUnreadable`.
    ``subject_id``: the NWB ``Subject``'s id, a pseudonym (the file carries no host, user
    or folder name either). ``subject_age`` (ISO 8601 duration; default ``P0D/``: unknown,
    "0 days or older"), ``subject_sex`` (M, F, O or U, the default: unknown) and
    ``subject_species`` (a Latin binomial such as ``Mus musculus``, or none) complete the
    Subject that NWB requires (nwbinspector finds it critical when missing)."""
    try:
        from hdmf.backends.hdf5.h5_utils import H5DataIO
        from hdmf.common import VectorData
        from pynwb import NWBHDF5IO, NWBFile
        from pynwb.ecephys import ElectricalSeries
        from pynwb.epoch import TimeIntervals
        from pynwb.file import Subject
    except ImportError:
        raise NWBExportError(
            "NWB export needs pynwb: pip install 'spikeforge[nwb]' (or `pip install pynwb`)"
        ) from None

    folder = _recording_folder(Path(recording))
    structure = _read_json(folder / "structure.oebin", "structure.oebin")
    streams = {entry.get("stream_name"): folder / "continuous" / entry["folder_name"].rstrip("/")
               for entry in structure.get("continuous", [])}
    # mode events+lfp: the LFP stream is the entry named "lfp" (host.openephys writes it)
    lfp = streams.get("lfp")
    meta = _read_json(folder / "spikeforge.json", "spikeforge.json")
    config = SystemConfig.from_dict(meta["device"])
    # channel mask: the file holds the enabled channels only (all in older recordings)
    enabled = [int(c) for c in meta.get("channels_enabled", range(config.channels))]
    # The acquisition stream is listed once it holds sweeps (none in mode events+lfp); an
    # older recording lists it always (its folder may then be empty).
    acquisition = streams.get("acquisition",
                              folder / "continuous" / "spikeforge-100.acquisition")
    samples, first_sample = _continuous(acquisition, len(enabled), config.sample_rate_hz)
    lfp_samples, lfp_first = (_continuous(lfp, len(enabled), config.lfp_rate_hz or 1.0)
                              if lfp is not None else (np.zeros((0, len(enabled))), 0))
    detections = folder / "spikeforge-detections"
    if not len(samples) and not len(lfp_samples) and not detections.is_dir():
        raise RecordingUnreadable(
            f"{folder} holds no samples: the recording was cut (or ended) before its first "
            "sweeps reached the disk; there is nothing to export")

    created = datetime.fromtimestamp((folder / "structure.oebin").stat().st_mtime, UTC)
    nwb = NWBFile(session_description=session_description, identifier=str(uuid.uuid4()),
                  session_start_time=created,
                  subject=Subject(subject_id=subject_id, age=subject_age, sex=subject_sex,
                                  species=subject_species,
                                  description="pseudonymous id; see the lab's records"))
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
    lost = meta.get("losses", [])
    if len(samples):   # mode events+lfp: no full-rate samples
        nwb.add_acquisition(ElectricalSeries(
            name="ElectricalSeries", data=H5DataIO(np.asarray(samples), chunks=True),
            electrodes=region, starting_time=first_sample / config.sample_rate_hz,
            rate=float(config.sample_rate_hz), conversion=MICROVOLTS_PER_BIT * 1e-6,
            description="raw samples, int16; multiply by conversion for volts",
            comments=(f"{sum(loss['samples'] for loss in lost)} samples lost on the way, "
                      "zero-filled: see intervals/data_loss") if lost else
                     "no samples lost on the way (no intervals/data_loss table)",
        ))
    starts = np.array([loss["first_sample"] for loss in lost], dtype=np.int64)
    counts = np.array([loss["samples"] for loss in lost], dtype=np.int64)
    rate = config.sample_rate_hz
    # Only a recording with losses has the table (readers and nwbinspector's checks choke
    # on an empty one); the series' comments say which.
    if lost:
        nwb.add_time_intervals(TimeIntervals(
            name="data_loss", description="samples lost on the way (zero-filled in the data)",
            columns=[VectorData(name="start_time", description="first lost sample, seconds",
                                data=starts / rate),
                     VectorData(name="stop_time",
                                description="after the last lost one, seconds",
                                data=(starts + counts) / rate),
                     VectorData(name="samples", description="number of samples lost",
                                data=counts)]))
    if detections.is_dir():
        _add_detections(nwb, detections, config)
    if len(lfp_samples):
        _add_lfp(nwb, lfp_samples, lfp_first, config, enabled)
    with NWBHDF5IO(str(out), "w") as io:
        io.write(nwb)
    return Path(out)


def _add_detections(nwb, folder: Path, config: SystemConfig) -> None:
    """The detector's events: per-channel snippet series and one table of every event."""
    from hdmf.common import DynamicTable, VectorData
    from pynwb.ecephys import SpikeEventSeries

    width = config.detector.max_snippet_pre + 1 + config.detector.max_snippet_post
    columns = {name: _appended_rows(folder / f"{name}.npy", dtype, shape)
               for name, dtype, shape in (("sample_numbers", "<i8", ()), ("channels", "<i2", ()),
                                          ("peaks", "<i2", ()), ("snippet_pre", "<i2", ()),
                                          ("waveforms", "<i2", (width,)))}
    events = min(len(column) for column in columns.values())    # a cut: the whole ones
    columns = {name: column[:events] for name, column in columns.items()}
    if not events:
        return
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


def _add_lfp(nwb, samples: np.ndarray, first_sample: int, config: SystemConfig,
             enabled: list[int]) -> None:
    """The LFP stream (``samples`` from decimated sweep ``first_sample``) as
    ``processing/ecephys/LFP/LFP`` (an ElectricalSeries at the decimated rate,
    ``starting_time`` = first decimated sweep / lfp rate)."""
    from hdmf.backends.hdf5.h5_utils import H5DataIO
    from pynwb.ecephys import LFP, ElectricalSeries

    region = nwb.create_electrode_table_region(enabled, "channels of the LFP stream")
    rate = config.lfp_rate_hz if config.lfp_rate_hz else 1.0
    series = ElectricalSeries(
        name="LFP", data=H5DataIO(np.asarray(samples), chunks=True),
        electrodes=region, starting_time=first_sample / rate,
        rate=float(rate), conversion=MICROVOLTS_PER_BIT * 1e-6,
        description=f"LFP: CIC decimator factor {config.lfp.factor if config.lfp else '?'}, "
                    f"order {config.lfp.order if config.lfp else '?'}, int16; multiply by "
                    "conversion for volts")
    _ecephys_module(nwb).add(LFP(electrical_series=series, name="LFP"))
