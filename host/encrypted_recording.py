"""Encrypted recordings: ``spikeforge record --encrypt-to RECIPIENT.pub`` and ``decrypt``.

Nothing readable lies on disk: instead of the Open Ephys folder, the recorder writes one
file, ``OUT/recording.sfenc``, that holds the recording's every write to the Open Ephys
writer (the set-up with the configuration and metadata, the sample blocks, losses, events,
flushes and the ending) as encrypted chunks. ``spikeforge decrypt`` replays them into an
:class:`~spikeforge.host.openephys.OpenEphysWriter`, which makes exactly the folder (every
file, byte for byte) that recording in the clear would have made: the writer is a function
of the calls it receives.

Cryptography (the ``cryptography`` library; age's construction, not its file format):

* the recipient is an X25519 key pair (:func:`new_recipient`, ``spikeforge key
  new-recipient NAME``); only its public half is needed to record, so the recording PC
  never holds what decrypts it;
* each recording makes an ephemeral X25519 key; the file key is HKDF-SHA256 of the shared
  secret (salt: 16 random bytes; info: a label, both public keys), 32 bytes;
* chunks are sealed with ChaCha20-Poly1305 under the file key, nonce = the chunk's index
  (8 bytes LE, then 4 zero bytes), associated data = the file's header, the index and the
  chunk's *final* flag: a chunk cannot be altered, moved, dropped from the middle or taken
  from another recording, and the last chunk (written when the recording closes) says so,
  so a file cut short is told from a whole one.

File layout::

    header:  b"SPKFENC1" | ephemeral public key (32) | recipient fingerprint (8) | salt (16)
    chunks:  length of the sealed chunk (uint32 LE) | final flag (1 byte) | sealed chunk

A chunk is sealed and written (and synced) at every flush of the recording (every second),
and whenever 8 MiB of writes have gathered, so a recording cut by ``kill -9`` decrypts up
to its last flush. A chunk's plaintext is a run of records: kind (1 byte), length of a JSON
header (uint32 LE), the JSON header, and for sample blocks the int16 samples.
"""

import hashlib
import json
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError

from .errors import ExitCode
from .frames import DetectorEvent, EventBlock
from .sinks import Tally

__all__ = ["ENCRYPTED_FILE_NAME", "Recipient", "RecipientSecret", "new_recipient", "load_recipient",
           "load_secret", "EncryptedRecordingWriter", "decrypt_recording", "DecryptResult",
           "EncryptedRecordingError", "RecipientKeyError", "ChunkFailure"]

#: The one file an encrypted recording's folder holds.
ENCRYPTED_FILE_NAME = "recording.sfenc"
MAGIC = b"SPKFENC1"
_HEADER = struct.Struct("<8s32s8s16s")
_CHUNK_PREFIX = struct.Struct("<IB")
_RECORD = struct.Struct("<BI")
_TAG_BYTES = 16
_HKDF_INFO = b"spikeforge encrypted recording v1"
#: Writes gathered before a chunk is sealed even without a flush.
CHUNK_LIMIT_BYTES = 8 << 20
#: Largest sealed chunk decrypt accepts (a damaged length field is caught, not allocated).
_MAX_CHUNK_BYTES = 256 << 20
_PUBLIC_PREFIX = "spikeforge-recipient-v1 "
_PRIVATE_PREFIX = "spikeforge-identity-v1 "

# Record kinds (the sink calls, plus the writer's set-up).
_OPEN, _CONTINUOUS, _LOSS, _EVENTS, _FLUSH, _CLOSE = range(6)


class EncryptedRecordingError(SpikeforgeError):
    """An encrypted recording cannot be decrypted (wholly or in part): wrong key, altered
    or cut file. The message names the file and the chunk."""

    exit_code = ExitCode.FAILURE


class RecipientKeyError(SpikeforgeError):
    """A recipient key file is missing, malformed, or (private half) readable by others."""

    exit_code = ExitCode.USAGE


def _crypto():
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import x25519
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError:  # pragma: no cover - installed with the crypto extra
        from .cipher import CipherUnavailable

        raise CipherUnavailable(
            "encrypted recordings need the 'cryptography' package; install the extra: "
            "pip install 'spikeforge[crypto]'") from None
    return hashes, serialization, x25519, ChaCha20Poly1305, HKDF


def _fingerprint(public: bytes) -> bytes:
    return hashlib.sha256(b"spikeforge recipient\0" + public).digest()[:8]


@dataclass(frozen=True)
class Recipient:
    """The public half: what a recording is encrypted to."""

    public: bytes
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self.public).hex()


@dataclass(frozen=True)
class RecipientSecret:
    """The private half: what decrypts recordings made to its :attr:`recipient`."""

    private: bytes = field(repr=False)
    path: Path | None = None

    @property
    def recipient(self) -> Recipient:
        _, serialization, x25519, _, _ = _crypto()
        key = x25519.X25519PrivateKey.from_private_bytes(self.private)
        return Recipient(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw))


def new_recipient(private_path: Path) -> tuple[RecipientSecret, Recipient]:
    """Make an X25519 pair: the private key in ``private_path`` (mode 0600, never
    overwritten), the public one in ``private_path`` + ``.pub``."""
    _, serialization, x25519, _, _ = _crypto()
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise RecipientKeyError(f"{path} exists already; recipient keys are never "
                                    "overwritten (a lost private key loses its recordings)")
    key = x25519.X25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    identity = RecipientSecret(private, private_path)
    private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(_PRIVATE_PREFIX + private.hex() + "\n")
        out.flush()
        os.fsync(out.fileno())
    recipient = Recipient(identity.recipient.public, public_path)
    public_path.write_text(_PUBLIC_PREFIX + recipient.public.hex() + "\n")
    return identity, recipient


def _read_key(path: Path, prefix: str, what: str) -> bytes:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise RecipientKeyError(f"no {what} at {path}; make a pair with: spikeforge key "
                                "new-recipient NAME") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipientKeyError(f"cannot read the {what} {path}: {exc}") from None
    try:
        value = bytes.fromhex(text.removeprefix(prefix)) if text.startswith(prefix) else b""
    except ValueError:
        value = b""
    if len(value) != 32:
        other = _PRIVATE_PREFIX if prefix == _PUBLIC_PREFIX else _PUBLIC_PREFIX
        hint = (f" (it is the {'private' if other == _PRIVATE_PREFIX else 'public'} key; "
                f"give the {what})" if text.startswith(other) else "")
        raise RecipientKeyError(f"{path} is not a {what}: it must be one line "
                                f"'{prefix}<64 hex digits>'{hint}")
    return value


def load_recipient(path: Path) -> Recipient:
    """The public key in ``path`` (``NAME.pub`` of ``spikeforge key new-recipient``)."""
    return Recipient(_read_key(Path(path), _PUBLIC_PREFIX, "recipient public key"), Path(path))


def load_secret(path: Path) -> RecipientSecret:
    """The private key in ``path``, after checking that only its owner can read it."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = 0
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RecipientKeyError(
            f"private key file {path} can be read by group or others (mode "
            f"{stat.S_IMODE(mode):04o}), so it is not used; fix it: chmod 600 {path}")
    return RecipientSecret(_read_key(path, _PRIVATE_PREFIX, "recipient private key"), path)


def _file_key(shared: bytes, salt: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hashes, _, _, _, hkdf = _crypto()
    return hkdf(algorithm=hashes.SHA256(), length=32, salt=salt,
                info=_HKDF_INFO + ephemeral + recipient).derive(shared)


def _nonce(index: int) -> bytes:
    return index.to_bytes(8, "little") + bytes(4)


def _associated(header: bytes, index: int, final: bool) -> bytes:
    return header + index.to_bytes(8, "little") + bytes([final])


def _record(kind: int, head: dict[str, Any], body: bytes = b"") -> bytes:
    text = json.dumps(head, default=str).encode()
    return _RECORD.pack(kind, len(text)) + text + body


class EncryptedRecordingWriter(Tally):
    """A recording sink that writes nothing readable: every call the Open Ephys writer would
    receive, sealed in chunks into ``out/recording.sfenc`` (see the module's docstring).
    Counts as the writer does (:class:`~spikeforge.host.sinks.Tally`), for the status.

    Parameters are :class:`~spikeforge.host.openephys.OpenEphysWriter`'s, and ``recipient``.
    """

    def __init__(self, out: Path, recipient: Recipient, config: SystemConfig,
                 metadata: dict[str, Any] | None = None,
                 channels: "tuple[int, ...] | list[int] | None" = None):
        _, serialization, x25519, aead, _ = _crypto()
        channels = (config.enabled_channels if channels is None
                    else tuple(sorted(set(channels))))
        super().__init__(channels)
        self.root = Path(out)
        if self.root.exists() and any(self.root.iterdir()):
            raise FileExistsError(
                f"{self.root} already holds files; choose a new folder for the recording")
        ephemeral = x25519.X25519PrivateKey.generate()
        ephemeral_public = ephemeral.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        shared = ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(recipient.public))
        salt = os.urandom(16)
        self._header = _HEADER.pack(MAGIC, ephemeral_public, _fingerprint(recipient.public),
                                    salt)
        self._aead = aead(_file_key(shared, salt, ephemeral_public, recipient.public))
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / ENCRYPTED_FILE_NAME
        self._file = open(self.path, "xb", buffering=0)  # noqa: SIM115 - closed in close()
        self._file.write(self._header)
        self._index = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.bytes_on_disk = len(self._header)
        self._add(_record(_OPEN, {"config": config.to_dict(), "metadata": metadata or {},
                                  "channels": list(channels)}))
        self._seal(final=False)    # the set-up is on disk from the first instant

    # -- sealing --
    def _add(self, record: bytes) -> None:
        self._pending.append(record)
        self._pending_bytes += len(record)
        if self._pending_bytes >= CHUNK_LIMIT_BYTES:
            self._seal(final=False, sync=False)

    def _seal(self, *, final: bool, sync: bool = True) -> None:
        plaintext = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        sealed = self._aead.encrypt(_nonce(self._index), plaintext,
                                    _associated(self._header, self._index, final))
        self._file.write(_CHUNK_PREFIX.pack(len(sealed), int(final)) + sealed)
        self.bytes_on_disk += _CHUNK_PREFIX.size + len(sealed)
        self._index += 1
        if sync:
            os.fsync(self._file.fileno())

    # -- as a recording sink --
    def write_continuous(self, stream: str, first_sample: int, samples: np.ndarray) -> None:
        super().write_continuous(stream, first_sample, samples)
        block = np.ascontiguousarray(samples)
        self._add(_record(_CONTINUOUS, {"stream": stream, "first_sample": int(first_sample),
                                        "dtype": block.dtype.str, "shape": list(block.shape)},
                          block.tobytes()))

    def write_loss(self, stream: str, first_sample: int, sweeps: int) -> None:
        super().write_loss(stream, first_sample, sweeps)
        self._add(_record(_LOSS, {"stream": stream, "first_sample": int(first_sample),
                                  "sweeps": int(sweeps)}))

    def write_events(self, block: EventBlock) -> None:
        super().write_events(block)
        events = [{"sample": int(e.sample), "channel": int(e.channel), "peak": int(e.peak),
                   "pre": int(e.pre), "snippet": [int(v) for v in e.snippet]}
                  for e in block.events]
        self._add(_record(_EVENTS, {"seq": int(block.seq), "events": events}))

    def flush(self, facts: dict[str, Any] | None = None) -> None:
        self._add(_record(_FLUSH, {"facts": facts or {}}))
        self._seal(final=False)

    def close(self, facts: dict[str, Any] | None = None) -> None:
        if self._file.closed:
            return
        self._add(_record(_CLOSE, {"facts": facts or {}}))
        self._seal(final=True)
        self._file.close()


# -- decrypting --
@dataclass(frozen=True)
class ChunkFailure:
    """A chunk that was not restored, and why."""

    index: int
    offset: int        #: byte offset of the chunk in the file
    kind: str          #: "altered", "cut", "damaged"
    message: str


@dataclass
class DecryptResult:
    """What :func:`decrypt_recording` restored."""

    out: Path
    chunks: int = 0               #: chunks restored
    complete: bool = False        #: the final chunk was found: the recording was closed
    failures: list[ChunkFailure] = field(default_factory=list)

    def summary(self) -> str:
        state = ("complete" if self.complete and not self.failures
                 else f"restored up to chunk {self.chunks - 1} (its last good flush)")
        return f"{self.out}: {self.chunks} chunks, {state}, {len(self.failures)} failures"


def _find_input(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / ENCRYPTED_FILE_NAME
    if not path.is_file():
        raise EncryptedRecordingError(
            f"no encrypted recording at {path}; give the folder `spikeforge record "
            "--encrypt-to` wrote (or its recording.sfenc)")
    return path


def decrypt_recording(source: Path, out: Path, identity: RecipientSecret) -> DecryptResult:
    """Restore the Open Ephys folder ``out`` from the encrypted recording ``source`` (its
    folder or its ``recording.sfenc``).

    Raises :class:`EncryptedRecordingError` with nothing written if the file is not an
    encrypted recording or is for another key, or if its first chunk does not open.
    Otherwise restores every chunk up to the first that is altered, damaged or cut, and
    locates every failure in the result (a file cut by ``kill -9``: restored up to its last
    flush, one "cut" failure)."""
    from .openephys import OpenEphysWriter

    path = _find_input(source)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EncryptedRecordingError(f"{out} exists and is not an empty folder; choose a new "
                                      "folder to restore the recording into")
    _, _, x25519, aead, _ = _crypto()
    with open(path, "rb") as file:
        header = file.read(_HEADER.size)
        if len(header) < _HEADER.size or header[:8] != MAGIC:
            raise EncryptedRecordingError(
                f"{path} is not a spikeforge encrypted recording (no {MAGIC.decode()} header)")
        _, ephemeral, fingerprint, salt = _HEADER.unpack(header)
        recipient = identity.recipient
        if _fingerprint(recipient.public) != fingerprint:
            raise EncryptedRecordingError(
                f"{path} was encrypted to recipient {fingerprint.hex()}, not to the key in "
                f"{identity.path or 'the key given'} (recipient {recipient.fingerprint}); "
                "decrypt it with the private key of that recipient")
        private = x25519.X25519PrivateKey.from_private_bytes(identity.private)
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(ephemeral))
        cipher = aead(_file_key(shared, salt, ephemeral, recipient.public))
        result = DecryptResult(out)
        writer: OpenEphysWriter | None = None
        last_facts: dict[str, Any] = {}
        closed = False
        index, offset = 0, _HEADER.size
        restoring = True
        while True:
            prefix = file.read(_CHUNK_PREFIX.size)
            if not prefix:
                break
            failure = None
            if len(prefix) < _CHUNK_PREFIX.size:
                failure = ("cut", f"the file ends inside chunk {index}'s prefix")
            else:
                length, final = _CHUNK_PREFIX.unpack(prefix)
                if not _TAG_BYTES <= length <= _MAX_CHUNK_BYTES or final > 1:
                    failure = ("damaged", f"chunk {index} has a damaged length/flag field "
                                          f"({length} bytes, flag {final})")
                else:
                    sealed = file.read(length)
                    if len(sealed) < length:
                        failure = ("cut", f"the file ends inside chunk {index} ({len(sealed)} "
                                          f"of its {length} bytes)")
            if failure is None:
                try:
                    plaintext = cipher.decrypt(_nonce(index), sealed,
                                               _associated(header, index, bool(final)))
                except Exception:   # cryptography's InvalidTag
                    failure = ("altered", f"chunk {index} does not authenticate: it was "
                                          "altered, moved or taken from another recording")
            if failure is not None:
                kind, why = failure
                if index == 0:
                    raise EncryptedRecordingError(
                        f"{path}, chunk 0 at byte {offset}: {why}; nothing restored")
                result.failures.append(ChunkFailure(index, offset, kind, f"{path}, chunk "
                                                    f"{index} at byte {offset}: {why}"))
                restoring = False
                if kind != "altered":
                    break        # the chunk boundaries are lost from here
            elif restoring:
                for kind, head, body in _records(plaintext, path, index):
                    if kind == _OPEN:
                        writer = OpenEphysWriter(out, SystemConfig.from_dict(head["config"]),
                                                 head["metadata"], channels=head["channels"])
                        continue
                    assert writer is not None
                    closed = _replay(writer, kind, head, body)
                    if kind in (_FLUSH, _CLOSE):
                        last_facts = head["facts"]
                result.chunks += 1
                result.complete = bool(final)
            index += 1
            offset += _CHUNK_PREFIX.size + (0 if failure else len(sealed))
            if failure is None and final:
                if file.read(1):
                    result.failures.append(ChunkFailure(
                        index, offset, "damaged", f"{path}: bytes after the final chunk "
                                                  f"(chunk {index - 1}) at byte {offset}"))
                break
    if writer is not None and not closed:
        # Cut (kill -9) or a failure: the folder as the writer left it at its last flush.
        writer.close(last_facts)
    if not result.complete and not result.failures:
        result.failures.append(ChunkFailure(
            index, offset, "cut", f"{path}: no final chunk after chunk {index - 1} (byte "
                                  f"{offset}): the recording was cut (kill -9, a crash, power) "
                                  "before it closed"))
    return result


def _records(plaintext: bytes, path: Path, index: int):
    at = 0
    while at < len(plaintext):
        kind, length = _RECORD.unpack_from(plaintext, at)
        at += _RECORD.size
        head = json.loads(plaintext[at:at + length])
        at += length
        body = b""
        if kind == _CONTINUOUS:
            size = int(np.prod(head["shape"])) * np.dtype(head["dtype"]).itemsize
            body = plaintext[at:at + size]
            at += size
        if kind > _CLOSE:
            raise EncryptedRecordingError(f"{path}, chunk {index}: unknown record kind {kind};"
                                          " was it written by a newer spikeforge?")
        yield kind, head, body


def _replay(writer: Any, kind: int, head: dict[str, Any], body: bytes) -> bool:
    """One recorded call into ``writer``; True once it closed."""
    if kind == _CONTINUOUS:
        samples = np.frombuffer(body, dtype=head["dtype"]).reshape(head["shape"])
        writer.write_continuous(head["stream"], head["first_sample"], samples)
    elif kind == _LOSS:
        writer.write_loss(head["stream"], head["first_sample"], head["sweeps"])
    elif kind == _EVENTS:
        events = tuple(DetectorEvent(e["sample"], e["channel"], e["peak"], e["pre"],
                                     np.asarray(e["snippet"], dtype="<i2"))
                       for e in head["events"])
        writer.write_events(EventBlock(head["seq"], events))
    elif kind == _FLUSH:
        writer.flush(head["facts"])
    elif kind == _CLOSE:
        writer.close(head["facts"])
        return True
    return False


def describe_failures(result: DecryptResult) -> list[str]:
    """One line per failure, for the CLI."""
    return [failure.message for failure in result.failures]

