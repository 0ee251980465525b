"""The Ethernet link in the configuration, the identity and the register map."""

import json

import pytest

from spikeforge.firmware.config import LINKS, SystemConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.ethernet import EthernetConfig
from spikeforge.firmware.identity import decode_identity, encode_identity
from spikeforge.firmware.registers import (
    ETHERNET_COUNTERS,
    REGISTERS,
    register,
    reset_values,
)


def test_the_default_link_is_the_uart_with_default_addresses():
    config = SystemConfig()
    assert config.link == "uart" == LINKS[0]
    assert config.ethernet == EthernetConfig()


def test_an_ethernet_configuration_survives_a_json_round_trip():
    config = SystemConfig(link="ethernet", channels=16,
                          ethernet=EthernetConfig(mac="02:00:00:12:34:56", ip="10.1.2.3",
                                                  data_port=6000, control_port=6001))
    again = SystemConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.ethernet.ip == 0x0A010203 and again.ethernet.mac == 0x020000123456


def test_an_unknown_link_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match="link must be one of uart, ethernet, not 'usb'"):
        SystemConfig(link="usb")


def test_ethernet_must_be_an_ethernet_config():
    with pytest.raises(ConfigError, match="ethernet must be an EthernetConfig"):
        SystemConfig(link="ethernet", ethernet={"ip": "10.0.0.1"})


def test_a_bad_address_in_a_dict_is_refused():
    with pytest.raises(ConfigError, match="ethernet ip must be a dotted IPv4"):
        SystemConfig.from_dict({"link": "ethernet", "ethernet": {"ip": "10.0.0"}})
    with pytest.raises(ConfigError, match="ethernet: .*known fields"):
        SystemConfig.from_dict({"link": "ethernet", "ethernet": {"gateway": "10.0.0.1"}})


def test_the_baud_is_not_checked_against_the_clock_on_ethernet():
    # 40 MHz / 13 = 3.08 Mbaud, 2.6 % off: refused for a UART, irrelevant for Ethernet.
    with pytest.raises(ConfigError, match="baud 3000000 cannot be made"):
        SystemConfig(clock_hz=40_000_000, sample_rate_hz=25_000)
    config = SystemConfig(clock_hz=40_000_000, sample_rate_hz=25_000, link="ethernet")
    assert config.baud == 3_000_000


def test_the_gigabit_link_carries_1024_raw_channels_a_uart_does_not():
    wide = dict(channels=1024, clock_hz=60_000_000, sweeps_per_frame=1,
                link_buffer_samples=4096)
    assert SystemConfig(link="ethernet", **wide).link_load == pytest.approx(0.52, abs=0.01)
    assert SystemConfig(baud=3_000_000, **wide).link_load > 100


def test_the_identity_carries_the_link():
    config = SystemConfig(link="ethernet", channels=8)
    decoded = decode_identity(encode_identity(config))
    assert decoded.link == "ethernet"
    assert decoded == config      # default addresses: the identity does not carry them
    assert decode_identity(encode_identity(SystemConfig())).link == "uart"
    # The link index sits in what was a reserved byte (0 on older devices: UART).
    assert encode_identity(SystemConfig())[7] == 0 and encode_identity(config)[7] == 1


def test_ethernet_registers_exist_only_in_ethernet_builds():
    uart, ethernet = SystemConfig(), SystemConfig(link="ethernet")
    names = {r.name for r in REGISTERS if r.name.startswith("ETH_")}
    assert set(ETHERNET_COUNTERS) <= names
    assert not any(register(n).present(uart) for n in names)
    assert all(register(n).present(ethernet) for n in names)
    assert all(register(n).access == "status" for n in ETHERNET_COUNTERS)
    assert all(0x34 <= register(n).address <= 0x3F for n in names)


def test_the_address_registers_reset_to_the_configured_addresses():
    config = SystemConfig(link="ethernet",
                          ethernet=EthernetConfig(mac=0x02_11_22_33_44_55, ip="10.0.0.7"))
    resets = reset_values(config)
    assert resets["ETH_MAC_HI"] == 0x0211 and resets["ETH_MAC_LO"] == 0x22334455
    assert resets["ETH_IP"] == 0x0A000007
    assert register("ETH_MAC_HI").width(config) == 16
