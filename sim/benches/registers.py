"""Register bank bench: random bus traffic against the model, read for read.

Every cycle the bench presents a random address (mapped, unmapped, or each register in
turn), sometimes a write of a random value, and random values on the status inputs; each
read-back (one cycle later) must equal :class:`RegisterBankModel`'s answer, and each ``rw``
register's output port must hold what the model holds.
"""

import random

import cocotb
from cocotb.triggers import FallingEdge

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import REGISTERS
from spikeforge.sim.drivers import Bench
from spikeforge.sim.models.registers import RegisterBankModel
from spikeforge.sim.runner import bench_parameters, report


@cocotb.test()
async def reads_and_writes_match_model(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    operations = int(params["operations"])
    rng = random.Random(7)
    model = RegisterBankModel(config)
    present = [r for r in REGISTERS if r.present(config)]
    status_regs = [r for r in present if r.access == "status"]
    rw_regs = [r for r in present if r.access == "rw"]
    addresses = [r.address for r in present]

    bench = Bench(dut)
    dut.bus__w_en.value = 0
    dut.bus__addr.value = 0
    await bench.reset()
    compared = 0
    pending = None  # the answer expected one cycle after an address was presented
    status = {r.name: 0 for r in status_regs}
    for step in range(operations):
        # Mid-cycle: outputs are settled (they change only at rising edges); check them,
        # then drive this cycle's inputs.
        await FallingEdge(dut.clk)
        if pending is not None:
            got = int(dut.bus__r_data.value)
            assert got == pending[1], (
                f"operation {step - 1}: read of 0x{pending[0]:02x} gave {got}, model {pending[1]}")
            compared += 1
        for reg in rw_regs:
            got = int(getattr(dut, reg.port_name).value)
            assert got == model.values[reg.name], f"{reg.name} port holds {got}"
        address = (addresses[step % len(addresses)] if step < 2 * len(addresses)
                   else rng.choice(addresses + [rng.randrange(256)]))
        write = rng.random() < 0.3
        value = rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(2**32)])
        for reg in status_regs:
            status[reg.name] = rng.randrange(2**32)
            getattr(dut, reg.port_name).value = status[reg.name]
        dut.bus__addr.value = address
        dut.bus__w_data.value = value
        dut.bus__w_en.value = int(write)
        # The read shows the register as it is in this cycle, before this cycle's write.
        pending = (address, model.read(address, status))
        if write:
            model.write(address, value)
    report(items=compared, cycles=bench.cycle())
