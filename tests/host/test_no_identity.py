"""No identity by default: every file a recording (and its NWB export) writes is scanned for
the machine's host name and user name, and for the absolute path of the folder it was
written to (a path under /home/NAME would carry the user name)."""

import getpass
import socket
from pathlib import Path

import pytest
from cipher_played_device import PlayedDevice

from spikeforge.cli import main
from spikeforge.firmware.config import SystemConfig

#: Names too short or too common to scan for without false alarms: "root" is in
#: "pytest-of-root" and in words, two-letter host names ("vm") occur by chance in sample
#: bytes. Such a name is replaced by a distinctive stand-in (below), not scanned for.
_COMMON = {"root", "user", "admin", "ubuntu", "runner", "debian", "localhost", "test",
           "guest", "vagrant", "docker", "pi"}
_STAND_IN_HOST, _STAND_IN_USER = "spkf-host-q7z3", "spkf-user-q7z3"


def _distinctive(name: str) -> bool:
    return len(name) >= 5 and name.lower() not in _COMMON


@pytest.fixture
def identities(monkeypatch):
    """The names to scan for: the machine's own if distinctive, and stand-ins that every
    way of asking for them returns while the recording is made (so code that asks for the
    host or user name and writes it is caught even on a machine called "vm")."""
    names = [n for n in (socket.gethostname(), getpass.getuser()) if _distinctive(n)]
    monkeypatch.setattr(socket, "gethostname", lambda: _STAND_IN_HOST)
    monkeypatch.setattr(getpass, "getuser", lambda: _STAND_IN_USER)
    for variable in ("USER", "LOGNAME", "USERNAME"):
        monkeypatch.setenv(variable, _STAND_IN_USER)
    monkeypatch.setenv("HOSTNAME", _STAND_IN_HOST)
    return names + [_STAND_IN_HOST, _STAND_IN_USER]


def _scan(folder: Path, names: list[str]) -> list[str]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes().lower()
        found += [f"{path.name}: {name!r}" for name in names if name.lower().encode() in data]
    return found


def test_a_recording_and_its_nwb_export_carry_no_host_user_or_folder_name(tmp_path,
                                                                          identities):
    board = PlayedDevice(SystemConfig(channels=4))
    out = tmp_path / "rec"
    try:
        assert main(["record", "--port", board.url, "--duration", "0.05",
                     "--out", str(out)]) == 0
    finally:
        board.close()
    scanned = [out]
    try:
        import pynwb  # noqa: F401
    except ImportError:
        pynwb = None
    if pynwb is not None:
        nwb = tmp_path / "nwb"
        nwb.mkdir()
        assert main(["export", str(out), "--nwb", str(nwb / "rec.nwb"),
                     "--subject-id", "mouse-A7"]) == 0
        assert b"mouse-A7" in (nwb / "rec.nwb").read_bytes()   # the pseudonym asked for
        scanned.append(nwb)
    files = [p for folder in scanned for p in folder.rglob("*") if p.is_file()]
    assert len(files) >= 8
    paths = [str(tmp_path.resolve()), str(tmp_path)]   # absolute paths name the user's home
    for folder in scanned:
        assert _scan(folder, identities + paths) == []
