"""Fixtures shared by the host tests."""

import pytest

from spikeforge.firmware.config import SystemConfig


@pytest.fixture
def model_device():
    """``make(config=None, **options)`` (None: 4 channels): a control-model device
    (``test_control.ModelDevice``) and a :class:`~spikeforge.host.device.Device` opened on
    it; closed after the test."""
    from test_control import ModelDevice

    from spikeforge.host.device import Device

    made = []

    def make(config: SystemConfig | None = None, **kwargs):
        fake = ModelDevice(config or SystemConfig(channels=4), **kwargs)
        made.append(fake)
        return fake, Device.open(fake.url)

    yield make
    for fake in made:
        fake.close()
