"""Bandwidth modes: what the device puts on the link, chosen by register ``BANDWIDTH_MODE``.

Which modes a build runs depends on the cores it was built with (``SystemConfig.codec``,
``.detector``, ``.lfp``); :func:`available_modes` is the value of the constant register
``BANDWIDTH_MODES``. At run time this module imports nothing of spikeforge; the configuration
appears in type hints alone.
"""

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import SystemConfig

__all__ = ["BandwidthMode", "MODE_NAMES", "mode_unavailable_reason", "available_modes"]

class BandwidthMode(IntEnum):
    """What the device puts on the link, chosen by register ``BANDWIDTH_MODE`` at run time."""

    RAW = 0          #: DATA frames (raw samples), EVENTS frames when the detector is built
    LOSSLESS = 1     #: COMPRESSED frames (one coded block each) instead of DATA
    EVENTS = 2       #: EVENTS frames only; DATA slots are skipped
    EVENTS_LFP = 3   #: EVENTS frames and LFP frames (decimated samples) instead of DATA


#: Mode names as the host API, the CLI and the link budget (host/budget.py) spell them.
MODE_NAMES: dict[str, BandwidthMode] = {
    "raw": BandwidthMode.RAW,
    "lossless": BandwidthMode.LOSSLESS,
    "events": BandwidthMode.EVENTS,
    "events+lfp": BandwidthMode.EVENTS_LFP,
}


def mode_unavailable_reason(config: "SystemConfig", mode: int) -> str | None:
    """Why a build of ``config`` cannot run bandwidth ``mode`` (None: it can). The device
    ignores a write of such a mode to ``BANDWIDTH_MODE``; this names what the build lacks
    and the configuration field that adds it."""
    if mode == BandwidthMode.RAW:
        return None
    if mode == BandwidthMode.LOSSLESS:
        if not config.coded:
            return ("the build has no lossless coder; rebuild with codec=CodecConfig("
                    "enabled=True) (SystemConfig.codec) or codec_v2=CodecV2Config("
                    "enabled=True, sync_blocks=256) (SystemConfig.codec_v2)")
        return None
    if mode in (BandwidthMode.EVENTS, BandwidthMode.EVENTS_LFP):
        if not config.detector.enabled:
            return ("the build has no spike detector; rebuild with detector=DetectorConfig("
                    "enabled=True) (SystemConfig.detector)")
        if mode == BandwidthMode.EVENTS_LFP and config.lfp is None:
            return ("the build has no LFP decimator; rebuild with lfp=DecimatorConfig("
                    "factor=30, order=3) (SystemConfig.lfp)")
        return None
    return f"there is no bandwidth mode {mode}; modes are 0-3 ({', '.join(MODE_NAMES)})"


def available_modes(config: "SystemConfig") -> int:
    """Bit mask of the bandwidth modes a build of ``config`` runs (bit m: mode m); the value
    of the constant register ``BANDWIDTH_MODES``."""
    return sum(1 << mode for mode in BandwidthMode
               if mode_unavailable_reason(config, mode) is None)
