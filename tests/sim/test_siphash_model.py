"""SipHash-2-4 against the reference: the 64 test vectors of the SipHash paper's reference
implementation (github.com/veorq/SipHash, vectors.h: key 00..0f, message 00..len-1 for
len = 0..63, the tag's 8 output bytes)."""

import random

import pytest

from spikeforge.firmware.control_protocol import MAC_MESSAGE, CommandOp, command_mac
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.siphash import siphash24
from spikeforge.sim.models.siphash import core_blocks, siphash_tag

KEY = bytes(range(16))
VECTORS = [
    "310e0edd47db6f72", "fd67dc93c539f874", "5a4fa9d909806c0d", "2d7efbd796666785",
    "b7877127e09427cf", "8da699cd64557618", "cee3fe586e46c9cb", "37d1018bf50002ab",
    "6224939a79f5f593", "b0e4a90bdf82009e", "f3b9dd94c5bb5d7a", "a7ad6b22462fb3f4",
    "fbe50e86bc8f1e75", "903d84c02756ea14", "eef27a8e90ca23f7", "e545be4961ca29a1",
    "db9bc2577fcc2a3f", "9447be2cf5e99a69", "9cd38d96f0b3c14b", "bd6179a71dc96dbb",
    "98eea21af25cd6be", "c7673b2eb0cbf2d0", "883ea3e395675393", "c8ce5ccd8c030ca8",
    "94af49f6c650adb8", "eab8858ade92e1bc", "f315bb5bb835d817", "adcf6b0763612e2f",
    "a5c91da7acaa4dde", "716595876650a2a6", "28ef495c53a387ad", "42c341d8fa92d832",
    "ce7cf2722f512771", "e37859f94623f3a7", "381205bb1ab0e012", "ae97a10fd434e015",
    "b4a31508beff4d31", "81396229f0907902", "4d0cf49ee5d4dcca", "5c73336a76d8bf9a",
    "d0a704536ba93e0e", "925958fcd6420cad", "a915c29bc8067318", "952b79f3bc0aa6d4",
    "f21df2e41d4535f9", "87577519048f53a9", "10a56cf5dfcd9adb", "eb75095ccd986cd0",
    "51a9cb9ecba312e6", "96afadfc2ce666c7", "72fe52975a4364ee", "5a1645b276d592a1",
    "b274cb8ebf87870a", "6f9bb4203de7b381", "eaecb2a30b22a87f", "9924a43cc1315724",
    "bd838d3aafbf8db7", "0b1a2a3265d51aea", "135079a3231ce660", "932b2846e4d70666",
    "e1915f5cb1eca46c", "f325965ca16d629f", "575ff28e60381be5", "724506eb4c328a95",
]


@pytest.mark.parametrize("length", range(64))
def test_siphash24_gives_the_reference_vector(length):
    tag = siphash24(KEY, bytes(range(length)))
    assert tag.to_bytes(8, "little").hex() == VECTORS[length]


def test_the_papers_worked_example():
    # Appendix A of the paper: 15-byte message 00..0e -> a129ca6149be45e5.
    assert siphash24(KEY, bytes(range(15))) == 0xA129CA6149BE45E5


def test_a_key_of_the_wrong_length_is_refused():
    with pytest.raises(ConfigError, match="16 bytes"):
        siphash24(bytes(15), b"")


def test_core_blocks_mark_first_and_last_and_pad_with_the_length():
    blocks = core_blocks(bytes(range(10)))
    assert len(blocks) == 2
    assert blocks[0] == int.from_bytes(bytes(range(8)), "little") | 1 << 64
    assert blocks[1] == (0x0908 | 10 << 56) | 1 << 65
    assert core_blocks(b"") == [1 << 64 | 1 << 65]


def test_every_bit_of_the_command_changes_its_mac():
    rng = random.Random(3)
    key = rng.randbytes(16)
    base = (rng.randrange(2**32), 0x12, CommandOp.WRITE, rng.randrange(2**32))
    mac = command_mac(key, *base)
    message = MAC_MESSAGE.pack(base[1], int(base[2]), base[3], base[0])
    assert mac == siphash_tag(key, message).to_bytes(8, "little")
    for bit in range(32):
        assert command_mac(key, base[0] ^ 1 << bit, *base[1:]) != mac
        assert command_mac(key, base[0], base[1], base[2], base[3] ^ 1 << bit) != mac
    assert command_mac(key, base[0], base[1] ^ 1, *base[2:]) != mac
    assert command_mac(key, base[0], base[1], CommandOp.READ, base[3]) != mac
    assert command_mac(bytes(16), *base) != mac
