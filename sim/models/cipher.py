"""Golden model of the link cipher (:class:`spikeforge.hdl.link_cipher.LinkCipher`): wire
frames in, the frames the cipher sends out.

Sealable frames (``firmware.stream_cipher.SEALABLE_TYPES``) become sealed frames: header with
the SEALED bit and the tag's bytes in the length, ChaCha20 ciphertext, SipHash-2-4 tag, a CRC
over what is sent. Other frames pass unchanged. Without a session, sealable frames are
withheld (counted, nothing sent). Byte for byte what the core sends, whatever the timing.
"""

from dataclasses import dataclass

from spikeforge.firmware.framing import CRC_BYTES, HEADER, HEADER_BYTES, SYNC, crc32
from spikeforge.firmware.siphash import siphash24
from spikeforge.firmware.stream_cipher import (
    SEALABLE_TYPES,
    TAG_BYTES,
    frame_nonce,
    mac_message,
    sealed_header,
)

from .chacha20 import keystream

__all__ = ["seal_frame", "seal_stream", "split_frames", "SealResult"]

_SEALABLE = {int(t) for t in SEALABLE_TYPES}


def split_frames(stream: bytes) -> list[bytes]:
    """A byte stream of whole, back-to-back wire frames as its frames."""
    frames, at = [], 0
    while at < len(stream):
        if stream[at:at + 2] != SYNC:
            raise ValueError(f"no sync at byte {at}: the stream must be whole frames")
        _, _, length = HEADER.unpack_from(stream, at + 2)
        end = at + HEADER_BYTES + length + CRC_BYTES
        frames.append(stream[at:end])
        at = end
    return frames


def seal_frame(frame: bytes, cipher_key: bytes, mac_key: bytes, session: int) -> bytes:
    """The bytes the cipher sends for one wire frame."""
    frame_type, seq, length = HEADER.unpack_from(frame, 2)
    if frame_type not in _SEALABLE:
        return frame
    payload = frame[HEADER_BYTES:HEADER_BYTES + length]
    stream = keystream(cipher_key, frame_nonce(session, frame_type, seq), length)
    ciphertext = bytes(p ^ k for p, k in zip(payload, stream, strict=True))
    header = sealed_header(frame_type, seq, length)
    tag = siphash24(mac_key, mac_message(session, header, ciphertext)).to_bytes(
        TAG_BYTES, "little")
    body = header + ciphertext + tag
    return SYNC + body + crc32(body).to_bytes(CRC_BYTES, "little")


@dataclass(frozen=True)
class SealResult:
    sent: bytes           #: the cipher's output stream
    withheld: int         #: sealable frames withheld for want of a session
    sealed: int           #: frames sealed


def seal_stream(stream: bytes, cipher_key: bytes, mac_key: bytes,
                session: int | None) -> SealResult:
    """The cipher's output for a stream of whole frames; ``session`` None: no session set
    (every sealable frame is withheld)."""
    out, withheld, sealed = [], 0, 0
    for frame in split_frames(stream):
        if frame[2] in _SEALABLE:
            if session is None:
                withheld += 1
                continue
            sealed += 1
            out.append(seal_frame(frame, cipher_key, mac_key, session))
        else:
            out.append(frame)
    return SealResult(b"".join(out), withheld, sealed)
