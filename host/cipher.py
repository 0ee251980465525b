"""Opening sealed frames: the host side of the encrypted stream
(:mod:`spikeforge.firmware.stream_cipher`, the device's ``LinkCipher``).

:class:`FrameOpener` checks a sealed frame's SipHash-2-4 tag and decrypts its payload with
ChaCha20 (the ``cryptography`` library, extra ``crypto``), giving back the plain frame the
device's framer made, so everything after it (``StreamDecoder``, its loss accounting, the
recorder) is unchanged. :class:`~spikeforge.host.frames.StreamDecoder` takes one as
``opener=`` and calls it for every frame.

Failures are counted and located, and the frame is never delivered:

* ``wrong tag``: a sealed frame whose tag does not match: tampered with, or opened with the
  wrong key or session (when every frame fails, the key or session is wrong);
* ``missing tag``: a frame of a neural-data type that is not sealed, or too short to hold a
  tag, while a key was given (a forged frame, or a device built without the cipher);
* ``no key``: a sealed frame reached a decoder that has no opener.
"""

from collections import Counter, deque
from dataclasses import dataclass

from spikeforge.firmware.errors import WireFormatError
from spikeforge.firmware.siphash import siphash24
from spikeforge.firmware.stream_cipher import (
    SEALABLE_TYPES,
    SESSION_BITS,
    TAG_BYTES,
    derive_keys,
    frame_nonce,
    is_sealed,
    mac_message,
    plain_type,
)
from spikeforge.firmware.wire import HEADER, FrameType

from .errors import DeviceError

__all__ = ["FrameOpener", "CipherFailure", "CipherUnavailable", "FAILURE_KINDS"]

FAILURE_KINDS = ("wrong tag", "missing tag", "no key")
_SEALABLE = {int(t) for t in SEALABLE_TYPES}
_KNOWN = {int(t): t for t in FrameType}


class CipherUnavailable(DeviceError):
    """The ``cryptography`` package is missing."""


@dataclass(frozen=True)
class CipherFailure:
    """One frame that was not delivered: what failed and where."""

    kind: str          #: one of :data:`FAILURE_KINDS`
    frame_type: int    #: its plain type
    seq: int
    message: str


def _type_name(frame_type: int) -> str:
    known = _KNOWN.get(plain_type(frame_type))
    return known.name if known is not None else f"type {plain_type(frame_type):#04x}"


def no_key_failure(frame_type: int, seq: int) -> CipherFailure:
    """The failure of a sealed frame reaching a decoder without a key."""
    return CipherFailure(
        "no key", plain_type(frame_type), seq,
        f"sealed {_type_name(frame_type)} frame seq {seq}: the device encrypts its stream; "
        "give its control key (the key file of `spikeforge key`) to decrypt it")


class FrameOpener:
    """Checks and decrypts sealed frames under a device's control key and a session.

    Parameters
    ----------
    control_key:
        The device's 16-byte control key (``host.keys.DeviceKey.key``); the stream keys
        derive from it.
    session:
        The 56-bit session the device was given for this boot (the host chose it).
    keep_failures:
        How many of the latest failures :attr:`failures` keeps (all are counted).
    """

    def __init__(self, control_key: bytes, session: int, *, keep_failures: int = 100):
        try:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
        except ImportError:  # pragma: no cover - the extra is installed in development
            raise CipherUnavailable(
                "decrypting the stream needs the 'cryptography' package; install the "
                "extra: pip install 'spikeforge[crypto]'") from None
        self._cipher, self._chacha20 = Cipher, algorithms.ChaCha20
        self._cipher_key, self._mac_key = derive_keys(control_key)
        if not 0 <= session < 1 << SESSION_BITS:
            raise WireFormatError(f"a session is {SESSION_BITS} bits, not {session!r}")
        self.session = session
        self.opened = 0
        self.counts: Counter[str] = Counter()
        self.failures: deque[CipherFailure] = deque(maxlen=keep_failures)

    @property
    def failed(self) -> int:
        return sum(self.counts.values())

    def open(self, frame_type: int, seq: int, payload: bytes) -> tuple[int, bytes] | None:
        """(plain type, plaintext) of a frame, or None if it must not be delivered (the
        failure is counted and kept). Frames of types the cipher never seals (IDENTITY,
        REPLY) pass unchanged."""
        if not is_sealed(frame_type):
            if frame_type in _SEALABLE:
                return self._fail("missing tag", frame_type, seq,
                                  "is not sealed, but this stream must be (a forged frame, "
                                  "or the device was built without the stream cipher)")
            return frame_type, payload
        if len(payload) < TAG_BYTES:
            return self._fail("missing tag", frame_type, seq,
                              f"carries {len(payload)} bytes, too few for its "
                              f"{TAG_BYTES}-byte tag")
        ciphertext, tag = payload[:-TAG_BYTES], payload[-TAG_BYTES:]
        header = HEADER.pack(frame_type, seq, len(payload))
        want = siphash24(self._mac_key, mac_message(self.session, header, ciphertext))
        if tag != want.to_bytes(TAG_BYTES, "little"):
            hint = ("no frame has opened yet: the key or the session is wrong (check the "
                    "device's key file and that this host set the session)"
                    if self.opened == 0 else "the frame was altered on the way")
            return self._fail("wrong tag", frame_type, seq, f"has a wrong tag; {hint}")
        nonce = frame_nonce(self.session, frame_type, seq)
        decryptor = self._cipher(self._chacha20(self._cipher_key, bytes(4) + nonce),
                                 mode=None).decryptor()
        self.opened += 1
        return plain_type(frame_type), decryptor.update(ciphertext) + decryptor.finalize()

    def _fail(self, kind: str, frame_type: int, seq: int, why: str) -> None:
        self.counts[kind] += 1
        self.failures.append(CipherFailure(
            kind, plain_type(frame_type), seq,
            f"{_type_name(frame_type)} frame seq {seq} {why}; not delivered"))
        return None
