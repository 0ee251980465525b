"""Behavioural models of acquisition chips, for cocotb benches and the virtual board."""
