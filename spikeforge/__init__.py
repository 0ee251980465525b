"""spikeforge: open hardware/firmware co-design for brain-computer interface chips.

Subpackages: ``firmware`` (the contract), ``hdl`` (Amaranth cores), ``sim`` (golden models
and cocotb benches), ``host`` (driver and decoder), ``boards`` (FPGA builds and flashing).
"""

__version__ = "0.1.0"
