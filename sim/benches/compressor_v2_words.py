"""v2 coded-word serialiser bench (hdl/compressor_v2_words.py): the words, their ``last`` and
``empty`` flags and every block's cut equal the model's
(:func:`~spikeforge.sim.models.compressor_v2_words.words_of_tokens`, i.e. the contract's
``cut_words`` of the entries' bytes), for the range coder's own entries and adversarial
ones (:mod:`spikeforge.sim.compressor_v2_words_cases`), entries offered with random gaps and
words taken under random back-pressure (unless ``stall`` is "none"). With ``stall`` "none"
the bench first checks the throughput: 2-byte entries offered every cycle, ``o`` always
ready, go in one a clock and come out one word a clock.
"""

import random

import cocotb

from spikeforge.sim.compressor_v2_words_cases import (
    blocks_of_transfers,
    pack_entry,
    words_bench_entries,
)
from spikeforge.sim.drivers import Bench, StreamSink, StreamSource, idle_gaps, ready_pattern
from spikeforge.sim.models.compressor_v2_words import Token, TokenEntry, words_of_tokens
from spikeforge.sim.runner import bench_parameters, report

THROUGHPUT_ENTRIES = 300


async def _throughput(bench: Bench, source: StreamSource, sink: StreamSink,
                      rng: random.Random) -> int:
    """2-byte entries back to back: the core must take one a clock and put out one word a
    clock; returns the cycles the entries took to go in."""
    entries = [TokenEntry((Token(rng.randrange(256)), None, Token(rng.randrange(256))))
               for _ in range(THROUGHPUT_ENTRIES)]
    entries.append(TokenEntry(flush=True))
    start = len(source.sent)
    await source.send([pack_entry(entry) for entry in entries])
    await bench.cycles(20)
    taken = [bench.cycle_of(time) for time, _ in source.sent[start:]]
    span = taken[-1] - taken[0] + 1
    assert span == len(entries), (
        f"{len(entries)} entries of 2 bytes took {span} cycles to go in (one a clock wanted)")
    out = [bench.cycle_of(time) for time, _ in sink.items]
    out_span = out[-1] - out[0] + 1
    assert out_span == len(out), f"{len(out)} words took {out_span} cycles to come out"
    blocks, _ = blocks_of_transfers([value for _, value in sink.items])
    assert blocks == words_of_tokens(entries), "throughput entries: words differ from model"
    return span


@cocotb.test()
async def coded_words_match_model(dut):
    params = bench_parameters()
    rng = random.Random(int(params.get("seed", 1)))
    stall = params["stall"]
    entries = words_bench_entries(params)
    expected = words_of_tokens(entries)

    bench = Bench(dut)
    await bench.reset()
    sink = StreamSink(dut, "o", ready_pattern=ready_pattern(rng, stall))
    source = StreamSource(dut, "i", idle=idle_gaps(rng, stall))
    throughput_cycles = 0
    if stall == "none":
        throughput_cycles = await _throughput(bench, source, sink, rng)
        await bench.reset()
        sink.items.clear()
        source.sent.clear()

    await source.send([pack_entry(entry) for entry in entries])
    total_bytes = sum(len(entry.bytes()) for entry in entries)
    for _ in range(total_bytes // 32 + 200):
        got, _ = blocks_of_transfers([value for _, value in sink.items])
        if len(got) >= len(expected):
            break
        await bench.cycles(16)
    await bench.cycles(64)          # nothing more may come (an open block stays open)
    got, open_words = blocks_of_transfers([value for _, value in sink.items])
    assert len(got) == len(expected), f"{len(got)} blocks out, model {len(expected)}"
    for index, (block, want) in enumerate(zip(got, expected)):
        assert block == want, (f"block {index} of {len(expected)}: RTL "
                               f"{[hex(w) for w in block[0][:8]]} empty={block[1]} "
                               f"({len(block[0])} words), model "
                               f"{[hex(w) for w in want[0][:8]]} empty={want[1]} "
                               f"({len(want[0])} words)")
    # the words of an open block never leave before the block ends, whatever they are
    assert len(open_words) == 0, f"{len(open_words)} words of an open block came out"
    report(items=len(entries), cycles=bench.cycle(), blocks=len(expected),
           words=sum(len(words) for words, _ in expected),
           empty_blocks=sum(empty for _, empty in expected),
           bytes=total_bytes, throughput_cycles=throughput_cycles)
