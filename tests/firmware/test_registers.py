"""The register map, and the HDL register bank generated from it (Amaranth simulator)."""

import pytest
from amaranth.sim import Simulator

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.registers import REGISTERS, identity_values, register
from spikeforge.hdl.registers import RegisterBank


def test_unknown_register_lists_the_known_ones():
    with pytest.raises(ConfigError, match="no register named 'STREAM_ENABEL'.*STREAM_ENABLE"):
        register("STREAM_ENABEL")


def test_register_bank_reads_writes_and_ignores_read_only():
    config = SystemConfig(channels=8)
    bank = RegisterBank(config)
    constants = identity_values(config)
    seen = {}

    async def testbench(ctx):
        ctx.set(bank.frames_dropped, 1234)
        for reg in REGISTERS:
            ctx.set(bank.bus.addr, reg.address)
            await ctx.tick()
            seen[reg.name] = ctx.get(bank.bus.r_data)
        assert ctx.get(bank.stream_enable) == register("STREAM_ENABLE").reset
        # A write to a rw register lands; to a constant or status register it does not.
        for name, value in (("STREAM_ENABLE", 0), ("CHANNELS", 99), ("FRAMES_DROPPED", 5)):
            ctx.set(bank.bus.addr, register(name).address)
            ctx.set(bank.bus.w_data, value)
            ctx.set(bank.bus.w_en, 1)
            await ctx.tick()
            ctx.set(bank.bus.w_en, 0)
            await ctx.tick()
            seen["after " + name] = ctx.get(bank.bus.r_data)
        ctx.set(bank.bus.addr, 0xFF)
        await ctx.tick()
        seen["unmapped"] = ctx.get(bank.bus.r_data)

    sim = Simulator(bank)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()

    for name, value in constants.items():
        assert seen[name] == value, name
    assert seen["FRAMES_DROPPED"] == 1234
    assert seen["after STREAM_ENABLE"] == 0
    assert seen["after CHANNELS"] == 8
    assert seen["after FRAMES_DROPPED"] == 1234
    assert seen["unmapped"] == 0


def test_bandwidth_modes_follow_what_the_build_has():
    from spikeforge.firmware.compression import CodecConfig
    from spikeforge.firmware.config import DecimatorConfig, DetectorConfig
    from spikeforge.firmware.registers import reset_values
    from spikeforge.firmware.wire import BandwidthMode, available_modes, mode_unavailable_reason

    plain = SystemConfig(channels=4)
    full = SystemConfig(channels=4, codec=CodecConfig(enabled=True),
                        detector=DetectorConfig(enabled=True))
    assert available_modes(plain) == 0b0001
    assert available_modes(full) == 0b0111          # events+lfp needs the decimator
    assert identity_values(full)["BANDWIDTH_MODES"] == 0b0111
    assert "SystemConfig.lfp" in mode_unavailable_reason(full, BandwidthMode.EVENTS_LFP)
    with_lfp = full.replace(lfp=DecimatorConfig())
    assert available_modes(with_lfp) == 0b1111
    assert identity_values(with_lfp)["BANDWIDTH_MODES"] == 0b1111
    assert "SystemConfig.detector" in mode_unavailable_reason(plain, BandwidthMode.EVENTS_LFP)
    assert "SystemConfig.codec" in mode_unavailable_reason(plain, BandwidthMode.LOSSLESS)
    assert "SystemConfig.detector" in mode_unavailable_reason(plain, BandwidthMode.EVENTS)
    assert "no bandwidth mode 7" in mode_unavailable_reason(full, 7)
    assert register("BANDWIDTH_MODE").address == 0xC0
    assert reset_values(full)["BANDWIDTH_MODE"] == 0
    assert not register("BANDWIDTH_MODE").present(plain)      # raw only: no register


def test_the_restart_prior_registers_exist_only_in_builds_with_a_prior():
    from dataclasses import replace

    from spikeforge.firmware.compression_v2 import CodecV2Config
    from spikeforge.firmware.config import SystemConfig
    from spikeforge.firmware.registers import GRID_WRITABLE, PRIOR_WRITABLE, register

    codec = CodecV2Config(enabled=True, sync_blocks=4)
    without = SystemConfig(channels=4, codec_v2=codec)
    with_prior = SystemConfig(channels=4, codec_v2=replace(codec, restart_prior=True))
    for name in PRIOR_WRITABLE:
        assert register(name).present(with_prior) and not register(name).present(without)
    assert register("PRIOR_ENTRY").width(with_prior) == 32     # prior_entry_word's 32 bits
    assert register("PRIOR_ON").width(with_prior) == 1
    assert not set(PRIOR_WRITABLE) & set(GRID_WRITABLE)


def test_the_code_weight_registers_exist_only_in_builds_with_code_weights():
    from dataclasses import replace

    from spikeforge.firmware.compression_v2 import CodecV2Config
    from spikeforge.firmware.config import SystemConfig
    from spikeforge.firmware.registers import (
        GRID_WRITABLE,
        PRIOR_WRITABLE,
        WEIGHTS_WRITABLE,
        register,
    )

    codec = CodecV2Config(enabled=True, sync_blocks=4, grid=True)
    without = SystemConfig(channels=4, codec_v2=codec)
    weighted = SystemConfig(channels=4, codec_v2=replace(codec, code_weights=True))
    for name in WEIGHTS_WRITABLE:
        assert register(name).present(weighted) and not register(name).present(without)
    assert register("WEIGHT_PAIR").width(weighted) == 32       # weight_pair_word's 32 bits
    assert register("WEIGHTS_ON").width(weighted) == 1
    assert register("WEIGHTS_ON").reset_value(weighted) == 0   # unweighted after reset
    assert not set(WEIGHTS_WRITABLE) & (set(GRID_WRITABLE) | set(PRIOR_WRITABLE))


def test_a_weight_pair_word_holds_the_pair_index_and_two_weights():
    import numpy as np

    from spikeforge.firmware.compression_v2 import (
        LITERALS,
        padded_code_weights,
        weight_pair_word,
        weight_pair_words,
    )

    assert weight_pair_word(0x123, 0x45, 0xFE) == 0x123 | 0x45 << 16 | 0xFE << 24
    assert weight_pair_word(4095, 1, 255) == 4095 | 1 << 16 | 255 << 24
    weights = np.arange(1, 65)          # a 6-bit grid's 64 codes
    words = weight_pair_words(weights, 64)
    padded = padded_code_weights(weights, 64)
    assert len(words) == (64 + 2 * LITERALS) // 2
    for word in words:                  # every entry from its word, by the register's doc
        pair = word & 0xFFF
        assert (word >> 16 & 0xFF, word >> 24 & 0xFF) == tuple(padded[2 * pair:2 * pair + 2])
    assert sorted(word & 0xFFF for word in words) == list(range(len(words)))
