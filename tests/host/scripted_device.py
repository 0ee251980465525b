"""A device for recorder tests that only streams, and streams exactly the items it is given."""

from spikeforge.firmware.config import SystemConfig
from spikeforge.host import LinkStats


class ScriptedDevice:
    """A device that only streams, and streams exactly the items it is given (then ends)."""

    enabled_channels = None

    def __init__(self, config: SystemConfig, items: list, url: str = "scripted://"):
        self.config = config
        self._items = items
        self.url = url
        self.stats = LinkStats()

    def identify(self) -> SystemConfig:
        return self.config

    def supports_control(self) -> bool:
        return False

    def items(self):
        yield from self._items
