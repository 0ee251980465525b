"""The encrypted-stream benches' cases for `make sim` (sim.suite appends them to its CASES):
the ChaCha20 block core alone, and the link cipher on random frames."""

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


CASES: tuple[BenchCase, ...] = (
    _chacha20(60, "none", 1),
    _chacha20(60, "some", 2),
    _link(60, "none", 3),
    _link(60, "some", 4),
)
