"""The virtual board's C++ RHD2000 chips (sim/virtual_board/rhd_chip.h) answer exactly as
the Python chip model (sim/chips/rhd2000.py): the same random command streams (every command
kind, register writes including the output format, ROM reads, calibration) give the same
MISO words, for each chip type."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
from cpp_driver import compile_driver

from spikeforge.firmware.rhd2000 import CALIBRATE, CHIPS, CLEAR, convert, read, write
from spikeforge.sim.chips.rhd2000 import RHD2000Chip

HEADER = Path(__file__).parents[2] / "sim" / "virtual_board" / "rhd_chip.h"

DRIVER = r"""
#include "rhd_chip.h"
#include <cstdio>
#include <cstdlib>
// usage: driver CHIP SAMPLES FILE_CHANNELS < words ; column c plays amplifier c
int main(int argc, char **argv) {
    rhd::Facts facts;
    if (!rhd::facts_of(argv[1], facts)) return 2;
    rhd::SampleFile file;
    file.load(argv[2], std::atoi(argv[3]), false);
    rhd::Chip chip(facts, &file);
    for (int a = 0; a < facts.amplifiers; ++a) chip.map_column(a, a);
    unsigned word;
    while (std::scanf("%u", &word) == 1) {
        auto out = chip.next_output();
        std::printf("%u %u\n", out.first, out.second);
        chip.transfer(static_cast<uint16_t>(word));
    }
    return 0;
}
"""


def random_commands(rng: np.random.Generator, count: int) -> list[int]:
    words = []
    for _ in range(count):
        kind = rng.integers(0, 7)
        if kind <= 2:
            words.append(convert(int(rng.integers(0, 64)), bool(rng.integers(0, 2))))
        elif kind == 3:
            register = int(rng.choice([4, 4, 5, 6, 7, 0, 17, 20, 40]))
            words.append(write(register, int(rng.integers(0, 256))))
        elif kind == 4:
            words.append(read(int(rng.integers(0, 64))))
        elif kind == 5:
            words.append(int(rng.choice([CALIBRATE, CLEAR])))
        else:
            words.append(int(rng.integers(0, 1 << 16)))      # anything, undefined included
    return words


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    return compile_driver(tmp_path_factory.mktemp("rhd_chip"), DRIVER, HEADER.parent)


@pytest.mark.parametrize("kind", sorted(CHIPS))
def test_cpp_chip_answers_as_the_python_chip(driver, kind, tmp_path):
    rng = np.random.default_rng(list(CHIPS).index(kind))
    amplifiers = CHIPS[kind].amplifiers
    samples = rng.integers(-32768, 32768, size=(amplifiers, 400), dtype=np.int32)
    samples[:, ::5] = -32768
    samples[:, 1::5] = 32767
    flat = tmp_path / "samples.i16"
    samples.T.astype("<i2").tofile(flat)
    words = random_commands(rng, 3000)

    chip = RHD2000Chip(kind, samples.astype(np.int16))
    expected = []
    for word in words:
        expected.append(chip.next_output())
        chip.transfer(word)
    result = subprocess.run([str(driver), kind, str(flat), str(amplifiers)],
                            input="\n".join(map(str, words)), capture_output=True, text=True,
                            check=True)
    got = [tuple(map(int, line.split())) for line in result.stdout.splitlines()]
    assert len(got) == len(words)
    mismatches = [(i, words[i - 2] if i >= 2 else None, e, g)
                  for i, (e, g) in enumerate(zip(expected, got)) if e != g]
    assert not mismatches, f"first mismatches (index, command, python, c++): {mismatches[:5]}"
    assert chip.conversions.sum() > 300, "the stream should convert a lot"
