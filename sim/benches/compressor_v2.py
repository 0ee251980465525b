"""v2 coder bench (symbol stage, hdl/compressor_v2.py): every sample's context, symbol,
frequencies, raw bits and forwarded 16 bits equal the model's, and those, range coded
under the running budget, are the v2 golden model's bytes (for every stimulus).

Samples arrive channel-serial with ``gap`` idle cycles before each sweep (and random idle
cycles unless ``stall`` is "none"); the output is read under random back-pressure. The
model is :func:`~spikeforge.sim.models.compressor_v2_stages.symbol_stream_v2`, itself
checked here against :func:`~spikeforge.sim.models.compressor_v2.encode_v2_stream`.
"""

import itertools

import cocotb
from amaranth.hdl import Shape

from spikeforge.firmware.compression_v2 import ESCAPE, coded_config
from spikeforge.hdl.compressor_v2 import SampleInLayout, SymbolLayoutV2
from spikeforge.sim.compressor_v2_cases import (
    grid_of,
    load_grid,
    load_prior,
    load_weights,
    prior_of,
    v2_bench_inputs,
    weights_of,
)
from spikeforge.sim.drivers import Bench, StreamSink, StreamSource, ready_pattern
from spikeforge.sim.models.compressor_v2 import encode_v2_stream
from spikeforge.sim.models.compressor_v2_stages import (
    SYMBOL_FIELDS,
    range_code_v2,
    symbol_stream_v2,
)
from spikeforge.sim.runner import bench_parameters, report


def _pack(layout, **values: int) -> int:
    word = 0
    for name, field in layout:
        width = Shape.cast(field.shape).width
        word |= (values[name] & ((1 << width) - 1)) << field.offset
    return word


def _unpack(layout, word: int) -> dict[str, int]:
    return {name: (word >> field.offset) & ((1 << Shape.cast(field.shape).width) - 1)
            for name, field in layout}


@cocotb.test()
async def symbols_match_model(dut):
    params = bench_parameters()
    codec, channels, sweeps, rng, samples = v2_bench_inputs(params)
    grid = grid_of(params["stimulus"]) if codec.grid else None
    prior = prior_of(params, codec)
    weights = weights_of(params, grid)
    expected = symbol_stream_v2(samples, codec, grid, prior=prior, weights=weights)

    # The split model is the golden model (the budget's verbatim samples included).
    stream, _, verbatim = encode_v2_stream(samples, coded_config(codec, weights), grid,
                                           weights, prior=prior)
    coded, _ = range_code_v2(expected, channels * codec.block_sweeps, codec.sync_blocks)
    assert coded == bytes(stream), "symbol model + budget + range coder != the golden model"

    bench = Bench(dut)
    await bench.reset()
    await load_grid(dut, grid)
    await load_prior(dut, codec, prior)
    await load_weights(dut, codec, grid, weights)
    in_layout = SampleInLayout(channels)
    out_layout = SymbolLayoutV2(channels)
    gap = int(params["gap"])
    random_idle = params["stall"] != "none"

    def idle():
        for index in itertools.count():
            extra = rng.choice([0, 0, 0, 1, 2]) if random_idle else 0
            yield extra + (gap if index % channels == 0 else 0)

    sink = StreamSink(dut, "o", ready_pattern=ready_pattern(rng, params["stall"]))
    source = StreamSource(dut, "i", idle=idle())
    items = [_pack(in_layout, channel=c, value=int(samples[n, c]), first=int(c == 0))
             for n in range(sweeps) for c in range(channels)]
    await source.send(items)
    for _ in range(100):
        if len(sink.items) >= len(items):
            break
        await bench.cycles(64)
    assert len(sink.items) == len(items), f"{len(sink.items)} symbols for {len(items)} samples"
    for index, (_, word) in enumerate(sink.items):
        got = _unpack(out_layout, word)
        want = dict(zip(SYMBOL_FIELDS, (int(v) for v in expected[index])))
        n, c = divmod(index, channels)
        assert got["channel"] == c and got["first"] == int(c == 0), f"sample {index} order"
        assert all(got[name] == want[name] for name in SYMBOL_FIELDS), (
            f"sweep {n} channel {c} (value {int(samples[n, c])}): RTL "
            f"{ {k: got[k] for k in SYMBOL_FIELDS} } != model {want}")
    contexts = {int(v) for v in expected[:, 0]}
    repeats = int((expected[1:, 0] == expected[:-1, 0]).sum())
    report(items=len(items), cycles=bench.cycle(), contexts=len(contexts),
           escapes=int((expected[:, 1] == ESCAPE).sum()),
           same_context_repeats=repeats, verbatim_samples_in_model=int(verbatim.sum()))
