"""Control keys on the host: one key file per device, and the counter its commands carry.

A keyed device (a build with ``SystemConfig.control_key``) carries out a write only if it is
signed with its key and carries a counter above every counter it accepted before
(``docs/wire-format.md``, "Authenticated commands"). The host keeps, per device name:

* ``<folder>/<name>.key`` — the 128-bit key, 32 hex digits; mode 0600, and a key file that
  group or others may read is refused (with the ``chmod`` that fixes it);
* ``<folder>/<name>.counter`` — the last counter used, written (atomically, synced) *before*
  a command that uses the next one is sent, so no counter is ever used twice, across
  restarts and crashes.

The folder is ``$SPIKEFORGE_KEY_DIR``, else ``$XDG_CONFIG_HOME/spikeforge/keys``, else
``~/.config/spikeforge/keys`` (created with mode 0700). Rotating a key keeps the old one as
``<name>.key.old`` until the device is rebuilt with the new one.
"""

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from spikeforge.firmware.control_protocol import COUNTER_LIMIT, EPOCH_BITS, EPOCH_SHIFT
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.siphash import KEY_BYTES

__all__ = ["KeyFileError", "DeviceKey", "key_folder", "new_key", "load_key", "rotate_key"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyFileError(ConfigError):
    """A key file is missing, malformed or readable by others."""


def key_folder() -> Path:
    """Where key files live (see the module's docstring)."""
    explicit = os.environ.get("SPIKEFORGE_KEY_DIR")
    if explicit:
        return Path(explicit)
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "spikeforge" / "keys"


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise KeyFileError(
            f"device name must be letters, digits, '.', '_' or '-' (up to 64, not starting "
            f"with a punctuation mark), not {name!r}; e.g. 'butterstick-lab2'")
    return name


@dataclass
class DeviceKey:
    """A device's control key and its counter file. Never printed whole: ``repr`` and
    :attr:`fingerprint` show a digest."""

    name: str
    key: bytes
    path: Path

    def __repr__(self) -> str:
        return f"DeviceKey({self.name!r}, fingerprint={self.fingerprint}, path={self.path})"

    @property
    def hex(self) -> str:
        """The key as ``SystemConfig.control_key`` takes it."""
        return self.key.hex()

    @property
    def fingerprint(self) -> str:
        """A short digest that names the key without revealing it (SHA-256, 8 bytes)."""
        return hashlib.sha256(b"spikeforge control key\0" + self.key).hexdigest()[:16]

    @property
    def counter_path(self) -> Path:
        return self.path.with_suffix(".counter")

    def last_counter(self) -> int:
        """The last counter a command was signed with (0: none yet)."""
        try:
            text = self.counter_path.read_text().strip()
        except FileNotFoundError:
            return 0
        try:
            value = int(text)
        except ValueError:
            raise KeyFileError(
                f"counter file {self.counter_path} is damaged ({text[:20]!r}); delete it: the "
                "next write resynchronises with the device's AUTH_COUNTER") from None
        return value

    def next_counter(self) -> int:
        """Reserve and return the next counter (stored before it is used)."""
        value = self.last_counter() + 1
        if value > COUNTER_LIMIT:
            raise KeyFileError(
                f"the key {self.name!r} has used all {COUNTER_LIMIT:,} counters; rotate it: "
                f"spikeforge key rotate {self.name}, then rebuild the device with the new key")
        self._store_counter(value)
        return value

    def next_epoch_counter(self) -> int:
        """Reserve and return the first counter of the next epoch (counter bits 31..16):
        what a host signs its opening command with, so that it lies above every epoch the
        device has spent (its replay floor after a reset) — see docs/wire-format.md."""
        epoch = (self.last_counter() >> EPOCH_SHIFT) + 1
        if epoch >= 1 << EPOCH_BITS:
            raise KeyFileError(
                f"the key {self.name!r} has used all {1 << EPOCH_BITS:,} epochs; rotate it: "
                f"spikeforge key rotate {self.name}, rebuild the device with the new key, and "
                "erase the epoch region of its flash (docs/wire-format.md, \"Epochs\")")
        value = (epoch << EPOCH_SHIFT) | 1
        self._store_counter(value)
        return value

    def raise_counter(self, at_least: int) -> None:
        """Make the next counter above ``at_least`` (the device's AUTH_COUNTER)."""
        if at_least > self.last_counter():
            self._store_counter(at_least)

    def _store_counter(self, value: int) -> None:
        temporary = self.counter_path.with_suffix(".counter.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"{value}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.counter_path)


def _key_path(name: str, folder: Path | None) -> Path:
    return (folder or key_folder()) / f"{_check_name(name)}.key"


def _write_key(path: Path, key: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key.hex() + "\n")
        out.flush()
        os.fsync(out.fileno())


def new_key(name: str, *, folder: Path | None = None) -> DeviceKey:
    """Make a random key for device ``name`` (refuses to overwrite one)."""
    path = _key_path(name, folder)
    if path.exists():
        raise KeyFileError(f"device {name!r} already has a key ({path}); to replace it: "
                           f"spikeforge key rotate {name}")
    key = os.urandom(KEY_BYTES)
    _write_key(path, key)
    return DeviceKey(name, key, path)


def load_key(name: str, *, folder: Path | None = None) -> DeviceKey:
    """Device ``name``'s key, after checking that only its owner can read the file."""
    path = _key_path(name, folder)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"no key for device {name!r} ({path} does not exist); make one: "
                           f"spikeforge key new {name}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} can be read or written by group or others (mode "
            f"{stat.S_IMODE(mode):04o}), so it is not used; fix it: chmod 600 {path}")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"key file {path} must hold 32 hex digits (a 128-bit key); make "
                           f"a new one: spikeforge key rotate {name}")
    return DeviceKey(name, key, path)


def rotate_key(name: str, *, folder: Path | None = None) -> DeviceKey:
    """Replace device ``name``'s key with a new random one; the old one is kept as
    ``<name>.key.old``. The counter carries on: the device's spent epochs stay in its
    configuration flash across rebuilds, so the new key's counters start above them."""
    old = load_key(name, folder=folder)
    os.replace(old.path, old.path.with_suffix(".key.old"))
    return new_key(name, folder=folder)
