"""The encrypted-stream benches' cases for `make sim` (sim.suite appends them to its CASES):
the ChaCha20 block core alone, the link cipher on random frames, and the whole system of a
cipher build (``system_cipher``: session and stop as signed commands on uart_rx, sealed frames
under link load decoded by the host)."""

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.stream_cipher import derive_keys

from .suite_case import BenchCase

__all__ = ["CASES"]

#: The benches' control key (a test key: never a device's).
BENCH_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


def _chacha20(blocks: int, stall: str, seed: int) -> BenchCase:
    from spikeforge.hdl.chacha20 import ChaCha20Block

    return BenchCase(bench="cipher_chacha20", label=f"{blocks} random blocks, stall={stall}",
                     component=ChaCha20Block,
                     params={"blocks": blocks, "stall": stall, "seed": seed})


def _link(frames: int, stall: str, seed: int) -> BenchCase:
    from spikeforge.hdl.link_cipher import LinkCipher

    cipher_key, mac_key = derive_keys(BENCH_KEY)
    return BenchCase(bench="cipher_link", label=f"{frames} random frames, stall={stall}",
                     component=lambda: LinkCipher(cipher_key, mac_key),
                     params={"frames": frames, "frames_before_session": 6, "stall": stall,
                             "seed": seed, "cipher_key": cipher_key.hex(),
                             "mac_key": mac_key.hex()})


def _system(config: SystemConfig, why: str, *, cycles: int, session_at: int, stop_at: int,
            read_every: int, expect_drops: bool, seed: int) -> BenchCase:
    from spikeforge.hdl.top import AcquisitionSystem

    session = (seed * 0x9E3779B97F4A7C15) % (1 << 56)
    return BenchCase(
        bench="system_cipher", label=f"{config.describe()} ({why})",
        component=lambda: AcquisitionSystem(config), config=config,
        params={"config": config.to_dict(), "cycles": cycles, "session_at": session_at,
                "stop_at": stop_at, "read_every": read_every, "expect_drops": expect_drops,
                "seed": seed, "session": session})


def _cipher_build(**fields) -> SystemConfig:
    defaults = {"channels": 4, "sweeps_per_frame": 8, "link_buffer_samples": 256,
                "identity_interval_frames": 16}
    return SystemConfig(control_key=BENCH_KEY.hex(), stream_cipher=True,
                        **(defaults | fields))


CASES: tuple[BenchCase, ...] = (
    _chacha20(60, "none", 1),
    _chacha20(60, "some", 2),
    _link(60, "none", 3),
    _link(60, "some", 4),
    # 4 Mbaud (3 cycles a bit): 89 % loaded with the tags and identity frames, fits: no drop.
    _system(_cipher_build(baud=4_000_000), "cipher, 89 % load, replies under load",
            cycles=160_000, session_at=12_000, stop_at=140_000, read_every=9_000,
            expect_drops=False, seed=5),
    # 5 channels at 2.4 Mbaud (5 cycles a bit): 158 % with the tags: the framer drops whole
    # frames, counted; 80-byte payloads (a keystream block and a part).
    _system(_cipher_build(channels=5, baud=2_400_000, link_buffer_samples=128),
            "cipher, link too slow: drops counted",
            cycles=160_000, session_at=12_000, stop_at=120_000, read_every=11_000,
            expect_drops=True, seed=6),
    # The virtual board of the privacy issue's report: 4 channels, 3 Mbaud, 32 sweeps a
    # frame (256-byte payloads, four keystream blocks), 90 % with the tags and identities.
    _system(_cipher_build(sweeps_per_frame=32, link_buffer_samples=2048),
            "cipher, the issue's board, 90 % load", cycles=300_000, session_at=30_000,
            stop_at=250_000, read_every=13_000, expect_drops=False, seed=7),
)
