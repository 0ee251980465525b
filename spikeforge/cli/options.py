"""The configuration options several commands share (``--config FILE.json`` and single
fields such as ``--channels``), and the configuration they name."""

import argparse

from spikeforge.firmware.config import SystemConfig, read_config_file

__all__ = ["add_config_options", "config_fields", "config_from_args"]

#: SystemConfig fields that have an option of their own (``--sample-rate-hz`` sets
#: ``sample_rate_hz``).
CONFIG_FIELD_OPTIONS = ("channels", "sample_rate_hz", "baud", "clock_hz", "sweeps_per_frame",
                        "link_buffer_samples")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE.json`` and one option per field of :data:`CONFIG_FIELD_OPTIONS`."""
    parser.add_argument("--config", metavar="FILE.json",
                        help="configuration file (SystemConfig fields as JSON)")
    for name in CONFIG_FIELD_OPTIONS:
        parser.add_argument("--" + name.replace("_", "-"), type=int)   # dest: name


def config_fields(args: argparse.Namespace, base: SystemConfig | None = None) -> dict:
    """The configuration fields the options name, not yet validated: ``base``'s fields (e.g.
    a board's default), the fields of ``--config`` on top, then the single-field options."""
    data = base.to_dict() if base is not None else {}
    if args.config:
        data.update(read_config_file(args.config))
    for name in CONFIG_FIELD_OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    return data


def config_from_args(args: argparse.Namespace, base: SystemConfig | None = None) -> SystemConfig:
    """The configuration the options name (:func:`config_fields`), validated."""
    return SystemConfig.from_dict(config_fields(args, base))
