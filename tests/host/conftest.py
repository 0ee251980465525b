"""Fixtures shared by the host tests."""

import pytest

from spikeforge.firmware.config import SystemConfig


@pytest.fixture
def model_device():
    """``make(config, **options)``: a control-model device (``test_control.ModelDevice``)
    and a :class:`~spikeforge.host.device.Device` opened on it; closed after the test."""
    from test_control import ModelDevice

    from spikeforge.host.device import Device

    made = []

    def make(config: SystemConfig, **kwargs):
        fake = ModelDevice(config, **kwargs)
        made.append(fake)
        return fake, Device.open(fake.url)

    yield make
    for fake in made:
        fake.close()
