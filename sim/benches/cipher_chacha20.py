"""ChaCha20 block core bench: random keys, nonces and counters in, every block exactly the
``cryptography`` library's ChaCha20 keystream (and the model's).

Requests are offered with random gaps and blocks taken under random back-pressure; each
block is compared with ``cryptography``'s (a 16-byte nonce: the 4-byte little-endian
counter, then the 12-byte nonce) and with :func:`spikeforge.sim.models.chacha20.block`.
With no stalls, proves the latency is :data:`~spikeforge.sim.models.chacha20.BLOCK_CYCLES`
and back-to-back requests give a block every that many cycles (64 bytes: more than a byte
per clock).
"""

import random

import cocotb
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from spikeforge.sim.drivers import Bench, StreamSink, StreamSource, idle_gaps, ready_pattern
from spikeforge.sim.models.chacha20 import BLOCK_CYCLES, block
from spikeforge.sim.runner import bench_parameters, report


def _reference(key: bytes, nonce: bytes, counter: int) -> bytes:
    algorithm = algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce)
    return Cipher(algorithm, mode=None).encryptor().update(bytes(64))


@cocotb.test()
async def blocks_match_cryptography(dut):
    params = bench_parameters()
    rng = random.Random(int(params.get("seed", 1)))
    blocks = int(params["blocks"])
    stall = params.get("stall", "some")
    bench = Bench(dut)
    key = rng.randbytes(32)
    dut.key.value = int.from_bytes(key, "little")
    source = StreamSource(dut, "i", idle_gaps(rng, stall))
    sink = StreamSink(dut, "o", ready_pattern(rng, stall, busy=0.5))
    await bench.reset()

    # One key per case (the port is a build constant in the link cipher).
    requests = []
    for _ in range(blocks):
        nonce = rng.randbytes(12)
        counter = rng.choice([0, 1, rng.randrange(2**32), 2**32 - 1])
        requests.append((nonce, counter))
    for nonce, counter in requests:
        source.send_nowait(int.from_bytes(nonce, "little") | counter << 96)
    for index, (nonce, counter) in enumerate(requests):
        got = (await sink.recv()).to_bytes(64, "little")
        want = _reference(key, nonce, counter)
        assert want == block(key, nonce, counter), "the model disagrees with cryptography"
        assert got == want, (f"block {index} (nonce {nonce.hex()}, counter {counter}): core "
                             f"{got.hex()}, cryptography {want.hex()}")
    if stall == "none":
        taken = [bench.cycle_of(t) for t, _ in source.sent]
        offered = [bench.cycle_of(t) for t, _ in sink.items]
        assert offered[0] - taken[0] == BLOCK_CYCLES, (
            f"first block after {offered[0] - taken[0]} cycles, model {BLOCK_CYCLES}")
        spacing = {b - a for a, b in zip(offered, offered[1:], strict=False)}
        assert spacing == {BLOCK_CYCLES}, f"blocks every {sorted(spacing)} cycles"
    report(items=blocks, cycles=bench.cycle())
