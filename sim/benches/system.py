"""System bench: the whole acquisition top, from reset to bits on the UART pin.

Proves, for one configuration, that every byte on the serial line — its value and the cycle
its start bit begins — equals the golden models' (test source -> framer -> UART, and test
source -> conditioner -> detector -> framer for the EVENTS frames), that no byte has a
framing error, and that the device's FRAMES_SENT, FRAMES_DROPPED, EVENTS_EMITTED,
EVENTS_DROPPED and EVENT_FRAMES_SENT registers, read over the register bus, equal the
model's counts. ``mode_writes`` ([cycle, mode] pairs) switch the bandwidth mode over the
register bus mid-run (a mode the build lacks is refused, and the bench checks the
read-back); the model follows the accepted ones from the next cycle. With a ``codebook``
(``codec.codebook`` builds) the bench first loads it over the register bus (each table
entry read back through CODEBOOK_VALUE), then makes the mode writes (a codebook write in the
cycle right after a switch to lossless), and at the end checks that codebook writes are
refused in lossless mode; with ``codebook_reload``, that after the
last write (leaving lossless) they stay refused until the coder's next block starts.
In LFP builds the LFP frames (mode events+lfp) are compared byte for byte and cycle for
cycle the same way. The captured bytes are saved to ``uart.bin`` in the run folder for the
host-side decoding test.

With the RHD2000 source, behavioural chips (:mod:`spikeforge.sim.chips.rhd2000`) sit on
the SPI pins behind the given cable delays; the front-end boots (set-up list, then the
conversion loop) on its own, and the expected samples are the arrays fed to the chips
(zeros until the first loop pass is emitted). They are saved next to the capture.
"""

from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from spikeforge.firmware.compression import Codebook, codebook_entry_word
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import register
from spikeforge.firmware.wire import BandwidthMode, mode_unavailable_reason
from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, UARTMonitor
from spikeforge.sim.models.detector import device_events
from spikeforge.sim.models.framer import SOURCE_LATENCY, frame_stream
from spikeforge.sim.models.rhd2000 import frontend_samples, random_recordings
from spikeforge.sim.models.source import source_signal
from spikeforge.sim.runner import bench_parameters, report


async def write_modes(bench: Bench, config: SystemConfig,
                      writes: list[tuple[int, int]]) -> None:
    """Write BANDWIDTH_MODE over the register bus: value v held on the bus in cycle w for
    each (w, v). A mode the build lacks is refused by the device (not modelled as a change)."""
    dut = bench.dut
    for cycle, value in writes:
        if cycle - bench.cycle() > 2:
            await bench.cycles(cycle - bench.cycle() - 2)
        await FallingEdge(dut.clk)
        while bench.cycle() < cycle:
            await FallingEdge(dut.clk)
        assert bench.cycle() == cycle, f"mode write for cycle {cycle} came too late"
        dut.registers__addr.value = register("BANDWIDTH_MODE").address
        dut.registers__w_data.value = value
        dut.registers__w_en.value = 1
        await FallingEdge(dut.clk)
        dut.registers__w_en.value = 0


def modes_in_force(config: SystemConfig, writes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The framer's view of ``writes``: (first cycle, mode) of each accepted write."""
    return [(cycle + 1, value) for cycle, value in writes
            if mode_unavailable_reason(config, value) is None]


async def read_register(bench: Bench, name: str) -> tuple[int, int]:
    """Read a register over the bus; returns (value, cycle whose state the value shows)."""
    dut = bench.dut
    await FallingEdge(dut.clk)
    dut.registers__addr.value = register(name).address
    await FallingEdge(dut.clk)
    sampled_in = bench.cycle() - 1
    await ReadOnly()
    return int(dut.registers__r_data.value), sampled_in


# -- codebook loading (codec.codebook builds; docs/compression.md) ----------------------------


async def write_register(bench: Bench, name: str, value: int) -> None:
    """One register write over the bus (held for one cycle), with its address and value on
    the bus a cycle ahead, as the command decoder's writes come."""
    dut = bench.dut
    await FallingEdge(dut.clk)
    dut.registers__addr.value = register(name).address
    dut.registers__w_data.value = value
    await FallingEdge(dut.clk)
    dut.registers__w_en.value = 1
    await FallingEdge(dut.clk)
    dut.registers__w_en.value = 0


async def load_codebook(bench: Bench, config: SystemConfig, codebook: Codebook) -> None:
    """Load ``codebook`` over the register bus as the host does (``Device.load_codebook``):
    base, multiplier, shift, then CODEBOOK_ENTRY per table entry, each entry read back
    through CODEBOOK_VALUE (current once a sweep's burst of samples has left the table's read
    port free: ``channels`` + 4 cycles after the write)."""
    bits = config.codec.codebook_bits
    for name, value in (("CODEBOOK_BASE", codebook.base & 0xFFFF),
                        ("CODEBOOK_MULTIPLIER", codebook.multiplier),
                        ("CODEBOOK_SHIFT", codebook.shift)):
        await write_register(bench, name, value)
        held, _ = await read_register(bench, name)
        assert held == value, f"{name} reads {held}, not the {value} written"
    for index, value in enumerate(codebook.table(bits)):
        await write_register(bench, "CODEBOOK_ENTRY", codebook_entry_word(index, int(value)))
        await bench.cycles(config.channels + 4)
        held, _ = await read_register(bench, "CODEBOOK_VALUE")
        assert held == int(value) & 0xFFFF, (
            f"table[{index}] reads back 0x{held:04x}, not the 0x{int(value) & 0xFFFF:04x} "
            "written")


async def write_right_after(bench: Bench, cycle: int, name: str, value: int) -> None:
    """A write in ``cycle`` + 1, straight after the bus write of ``cycle`` (``write_modes``
    returns in that cycle)."""
    dut = bench.dut
    assert bench.cycle() == cycle + 1, f"the write after cycle {cycle} came too late"
    dut.registers__addr.value = register(name).address
    dut.registers__w_data.value = value
    dut.registers__w_en.value = 1
    await FallingEdge(dut.clk)
    dut.registers__w_en.value = 0


async def check_codebook_refused(bench: Bench, config: SystemConfig,
                                 codebook: Codebook) -> None:
    """In lossless mode every codebook write is refused: the registers and the table keep
    what was loaded."""
    table = codebook.table(config.codec.codebook_bits)
    index, _ = await read_register(bench, "CODEBOOK_ENTRY")
    await write_register(bench, "CODEBOOK_ENTRY", codebook_entry_word(0, int(table[0]) ^ 0x55))
    await write_register(bench, "CODEBOOK_BASE", (codebook.base + 1) & 0xFFFF)
    held_index, _ = await read_register(bench, "CODEBOOK_ENTRY")
    assert held_index == index, "a CODEBOOK_ENTRY write was taken in lossless mode"
    base, _ = await read_register(bench, "CODEBOOK_BASE")
    assert base == codebook.base & 0xFFFF, "a CODEBOOK_BASE write was taken in lossless mode"
    shift, _ = await read_register(bench, "CODEBOOK_SHIFT")
    assert shift == codebook.shift, (
        "a CODEBOOK_SHIFT write in the cycle after the switch to lossless was taken")
    await bench.cycles(config.channels + 4)
    value, _ = await read_register(bench, "CODEBOOK_VALUE")
    assert value == int(table[index]) & 0xFFFF, "the table changed in lossless mode"


async def check_codebook_waits_for_a_block(bench: Bench, config: SystemConfig,
                                           codebook: Codebook, left_lossless: int) -> None:
    """After a switch out of lossless (written in cycle ``left_lossless``) codebook writes
    stay refused until the coder's next block starts (a block admitted in lossless mode is
    still being coded), and are taken after it."""
    period = config.codec.block_sweeps * config.cycles_per_sample
    next_block = SOURCE_LATENCY + -(-(left_lossless + 1 - SOURCE_LATENCY) // period) * period
    assert bench.cycle() + 8 < next_block, "the switch out of lossless is too close to a block"
    shift = (codebook.shift + 1) % 32
    await write_register(bench, "CODEBOOK_SHIFT", shift)
    held, at = await read_register(bench, "CODEBOOK_SHIFT")
    assert held == codebook.shift, (
        f"a codebook write in cycle {at - 1}, before the first block after leaving lossless "
        f"(cycle {next_block}), was taken")
    await bench.cycles(next_block + 2 - bench.cycle())
    await write_register(bench, "CODEBOOK_SHIFT", shift)
    held, at = await read_register(bench, "CODEBOOK_SHIFT")
    assert held == shift, f"a codebook write in cycle {at - 1}, after a block start, was refused"


@cocotb.test()
async def uart_bytes_match_model(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    cycles = int(params["cycles"])
    bit_cycles = config.uart_divisor

    dut.registers__w_en.value = 0
    dut.registers__addr.value = 0
    dut.registers__w_data.value = 0
    bench = Bench(dut)
    uart = UARTMonitor(dut.uart_tx, bit_cycles * CLOCK_PERIOD_NS)
    sweeps = cycles // config.cycles_per_sample + 1
    sweeps -= sweeps % config.sweeps_per_frame
    sweeps += config.sweeps_per_frame
    if config.lfp is not None:   # LFP: whole LFP frames of decimated sweeps past the end
        sweeps += config.sweeps_per_frame * config.lfp.factor
    if config.source == "rhd":
        from spikeforge.sim.chips.rhd2000 import RHD2000Bus, RHD2000Chip

        recordings = random_recordings(config, sweeps, seed=7)
        chips = [RHD2000Chip(kind, rec) for kind, rec in zip(config.rhd.chips, recordings)]
        RHD2000Bus(dut, chips, params["cable_delays"], CLOCK_PERIOD_NS, prefix="rhd_")
    writes = [tuple(w) for w in params.get("mode_writes", [])]
    await bench.reset()
    codebook = Codebook.from_dict(params["codebook"]) if "codebook" in params else None
    if codebook is not None:     # codebook: loaded before the mode writes

        async def load_then_switch() -> None:
            await load_codebook(bench, config, codebook)
            await write_modes(bench, config, writes)
            if writes and writes[-1][1] == BandwidthMode.LOSSLESS:
                await write_right_after(bench, writes[-1][0], "CODEBOOK_SHIFT",
                                        (codebook.shift + 1) % 32)
            if params.get("codebook_reload"):
                await check_codebook_waits_for_a_block(bench, config, codebook, writes[-1][0])

        cocotb.start_soon(load_then_switch())
    elif writes:
        cocotb.start_soon(write_modes(bench, config, writes))
    await bench.cycles(cycles)

    if config.source == "rhd":
        converts = [c for c in chips[0].log if c.word >> 14 == 0]
        assert converts, "the front-end never started its conversion loop"
        first_pass = bench.cycle_of(converts[0].time_ns) // config.cycles_per_sample
        samples = frontend_samples(config, recordings, first_pass, sweeps)
        np.save(Path(params["capture"]).with_suffix(".truth.npy"), samples)
    else:
        samples = source_signal(config, sweeps).samples
    # The RHD front-end emits its samples in the test source's cycles, so the detector
    # model sees them with the same latency.
    events = device_events(config, samples, SOURCE_LATENCY)
    modes = modes_in_force(config, writes)
    schedule = frame_stream(config, samples, events=events, modes=modes, codebook=codebook)
    event_output = schedule.event_output

    # Bytes whose stop bit has been sampled by the end of the run.
    end_cycle = bench.cycle()
    got = [(bench.cycle_of(t), v) for t, v in uart.received]
    expected = [(c + 1, v) for c, v in zip(schedule.accept_cycle, schedule.data)
                if (c + 1) * 2 + 19 * bit_cycles < 2 * end_cycle]
    assert not uart.framing_errors, (
        f"{len(uart.framing_errors)} framing errors, first at cycle "
        f"{bench.cycle_of(uart.framing_errors[0])}")
    for index, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (
            f"byte {index}: RTL sent 0x{g[1]:02x} starting in cycle {g[0]}, model expects "
            f"0x{e[1]:02x} starting in cycle {e[0]}")
    assert len(got) == len(expected), (
        f"RTL sent {len(got)} bytes in {end_cycle} cycles, model expects {len(expected)}")

    Path(params["capture"]).write_bytes(bytes(v for _, v in got))

    dropped, at = await read_register(bench, "FRAMES_DROPPED")
    assert dropped == schedule.dropped_before(at + 1, config), (
        f"FRAMES_DROPPED reads {dropped}, model dropped "
        f"{schedule.dropped_before(at + 1, config)} by cycle {at}")
    sent, at = await read_register(bench, "FRAMES_SENT")
    assert sent == schedule.sent_by(at), (
        f"FRAMES_SENT reads {sent}, model sent {schedule.sent_by(at)} by cycle {at}")
    emitted, at = await read_register(bench, "EVENTS_EMITTED")
    assert emitted == event_output.emitted_before(at + 1), (
        f"EVENTS_EMITTED reads {emitted}, model {event_output.emitted_before(at + 1)}")
    events_dropped, at = await read_register(bench, "EVENTS_DROPPED")
    assert events_dropped == event_output.dropped_before(at + 1), (
        f"EVENTS_DROPPED reads {events_dropped}, model {event_output.dropped_before(at + 1)}")
    event_frames, at = await read_register(bench, "EVENT_FRAMES_SENT")
    assert event_frames == schedule.event_frames_sent_by(at), (
        f"EVENT_FRAMES_SENT reads {event_frames}, model {schedule.event_frames_sent_by(at)}")
    mode, _ = await read_register(bench, "BANDWIDTH_MODE")
    assert mode == (modes[-1][1] if modes else 0), (
        f"BANDWIDTH_MODE reads {mode}; the writes accepted were {modes}")
    damaged, _ = await read_register(bench, "COMPRESSED_BLOCKS_DAMAGED")
    assert damaged == 0, f"the coder damaged {damaged} blocks; the framer must drain it"
    overruns, _ = await read_register(bench, "SOURCE_OVERRUNS")
    assert overruns == 0, f"the source lost {overruns} samples; the framer must never stall it"
    if codebook is not None and modes and modes[-1][1] == BandwidthMode.LOSSLESS:
        await check_codebook_refused(bench, config, codebook)

    report(items=len(got), cycles=bench.cycle(), frames_sent=sent, frames_dropped=dropped,
           identity_frames=schedule.identity_frames, event_frames=event_frames,
           events_emitted=emitted, events_dropped=events_dropped,
           blocks_sent=len(schedule.sent_blocks), blocks_dropped=len(schedule.dropped_blocks),
           lfp_sent=len(schedule.sent_lfp_slots), lfp_dropped=len(schedule.dropped_lfp_slots))
