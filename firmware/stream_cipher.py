"""The encrypted stream (option, ``SystemConfig.stream_cipher``): what a sealed frame is.

A build with the stream cipher seals the frames that carry neural data (DATA, EVENTS,
COMPRESSED, LFP) on their way to the link (:class:`spikeforge.hdl.link_cipher.LinkCipher`);
IDENTITY frames and command replies stay in the clear. A sealed frame is::

    sync | type | SEALED, seq, length + TAG_BYTES | ChaCha20(payload) | tag | CRC-32

* the header stays in the clear (the host's loss accounting reads ``seq``); the type carries
  the :data:`SEALED` bit, so a host without the key never takes ciphertext for samples;
* the payload is XORed with the ChaCha20 keystream (RFC 8439 block function) under the
  device's cipher key, nonce :func:`frame_nonce` (seq, plain type, session), block counter
  0, 1, ... from the payload's first byte: each frame decrypts on its own, so a lost frame
  costs nothing more;
* the tag is SipHash-2-4 under the device's MAC key of :func:`mac_message` (session, the
  header as sent, the ciphertext): every sealed frame is checked on its own;
* the CRC is computed over what is sent (header, ciphertext and tag).

Keys: both derive from the device's one secret, its 128-bit control key (item 1 of the
privacy issue; ``spikeforge key``), by SipHash-2-4 as a PRF on fixed labels
(:func:`derive_keys`), so there is one key per device to provision, keep and rotate.

Session: a nonce must never repeat under a key, and ``seq`` restarts at 0 after every reset.
The 56-bit session in the nonce is chosen by the host at random for each boot and written to
the device (``CIPHER_SESSION_LO``/``HI``, once per boot; until then sealed frames are withheld
and counted). This module imports only the framing, SipHash and the errors.
"""

import struct

from .errors import WireFormatError
from .framing import HEADER, FrameType
from .siphash import KEY_BYTES, siphash24

__all__ = ["SEALED", "SEALABLE_TYPES", "CIPHER_KEY_BYTES", "MAC_KEY_BYTES", "TAG_BYTES",
           "NONCE_BYTES", "BLOCK_BYTES", "SESSION_BITS", "derive_keys", "frame_nonce",
           "mac_message", "is_sealed", "plain_type", "sealed_header"]

#: Set in the type byte of a sealed frame.
SEALED = 0x80
#: The frame types a cipher build seals: those that carry neural data.
SEALABLE_TYPES = (FrameType.DATA, FrameType.EVENTS, FrameType.COMPRESSED, FrameType.LFP)
CIPHER_KEY_BYTES = 32
MAC_KEY_BYTES = KEY_BYTES
TAG_BYTES = 8
NONCE_BYTES = 12
#: One ChaCha20 keystream block.
BLOCK_BYTES = 64
#: The session's width: nonce bytes 5..11.
SESSION_BITS = 56

_LABEL = b"spikeforge stream key, word "
_SESSION_BLOCK = struct.Struct("<Q")


def derive_keys(control_key: bytes) -> tuple[bytes, bytes]:
    """(cipher key, MAC key) of a device with ``control_key``: the 8-byte SipHash-2-4 outputs
    of the labels ``"spikeforge stream key, word 0"`` .. ``"word 5"`` (words 0-3 the 32-byte
    ChaCha20 key, 4-5 the 16-byte SipHash key). The labels are 29 bytes, never the 10-byte
    message of an authenticated command, so no command tag is ever a key word."""
    if len(control_key) != KEY_BYTES:
        raise WireFormatError(
            f"the stream keys derive from the 16-byte control key, not {len(control_key)} "
            "bytes; give the device's control key (spikeforge key show DEVICE)")
    words = [siphash24(control_key, _LABEL + bytes([index])).to_bytes(8, "little")
             for index in range(6)]
    return b"".join(words[:4]), b"".join(words[4:])


def _check_session(session: int) -> None:
    if not 0 <= session < 1 << SESSION_BITS:
        raise WireFormatError(f"a session is {SESSION_BITS} bits, not {session!r}")


def frame_nonce(session: int, frame_type: int, seq: int) -> bytes:
    """The 12-byte ChaCha20 nonce of a frame: ``seq`` (4 bytes LE), the plain type (1 byte),
    ``session`` (7 bytes LE). Unique per frame within a session: each type's seq only grows
    between resets (2**32 frames: 145 years at 30 kS/s and one sweep per frame is not)."""
    _check_session(session)
    return ((seq & 0xFFFFFFFF).to_bytes(4, "little") + bytes([plain_type(frame_type)])
            + session.to_bytes(7, "little"))


def sealed_header(frame_type: int, seq: int, payload_bytes: int) -> bytes:
    """The 7 header bytes after the sync of the sealed frame of a plain frame."""
    return HEADER.pack(plain_type(frame_type) | SEALED, seq & 0xFFFFFFFF,
                       payload_bytes + TAG_BYTES)


def mac_message(session: int, header: bytes, ciphertext: bytes) -> bytes:
    """What a sealed frame's tag covers: the session as one 8-byte LE word, the 7 header
    bytes as sent (sealed type, seq, length), the ciphertext."""
    _check_session(session)
    return _SESSION_BLOCK.pack(session) + header + ciphertext


def is_sealed(frame_type: int) -> bool:
    return bool(frame_type & SEALED)


def plain_type(frame_type: int) -> int:
    return frame_type & ~SEALED & 0xFF
