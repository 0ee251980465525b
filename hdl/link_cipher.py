"""The link cipher: seals the framer's frames on their way to the link (the encrypted-stream
option, ``SystemConfig.stream_cipher``; the format is :mod:`spikeforge.firmware.stream_cipher`).

It sits on the framer's byte stream (``Framer.o`` -> here -> link arbiter or Ethernet link),
so the framer is untouched. Golden model: :mod:`spikeforge.sim.models.cipher`.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.framing import CRC_BYTES, HEADER_BYTES, SYNC
from spikeforge.firmware.stream_cipher import (
    CIPHER_KEY_BYTES,
    MAC_KEY_BYTES,
    SEALABLE_TYPES,
    SEALED,
    SESSION_BITS,
    TAG_BYTES,
)

from .chacha20 import ChaCha20Block
from .crc import crc32_update
from .siphash import SipHash

__all__ = ["LinkCipher"]


class LinkCipher(wiring.Component):
    """Wire frames in, the same frames out with those that carry neural data sealed.

    Each frame's 9 header bytes are taken first (nothing is sent meanwhile), then:

    * a sealable frame (DATA, EVENTS, COMPRESSED, LFP) with ``session_valid`` high is sent
      sealed: its type with the SEALED bit, its length plus the tag's 8 bytes, its payload
      XORed with the ChaCha20 keystream (nonce: seq, type, ``session``; block counter from
      0), the SipHash-2-4 tag, and a CRC-32 over what was sent (the framer's CRC is taken
      and dropped). ``frames_sealed`` counts it;
    * a sealable frame while ``session_valid`` is low is taken whole and not sent
      (``frames_withheld`` counts it): no neural data leaves unencrypted, and none leaves
      under a session the host did not choose;
    * any other frame (IDENTITY) passes unchanged.

    Timing: the header goes out as the frame's first keystream block is computed (41
    cycles from its last header byte), so a sealed frame's payload starts about 32 cycles
    after its header; then one byte per clock, sustained (the next block is computed while
    the current one is used), the tag 7 cycles after the last payload byte. Per frame
    about 9 + 32 + 8 cycles more than the frame's bytes (9 for a clear frame).

    Ports
    -----
    i : stream of bytes in
        Whole wire frames, back to back (``Framer.o``).
    o : stream of bytes out
        Whole frames, for the link.
    session : in, 56 bits
        The session of the nonce (``firmware.stream_cipher.frame_nonce``); read at each
        frame's last header byte.
    session_valid : in
        A session is set (for this boot). Sealable frames are withheld while it is low.
    frames_sealed, frames_withheld : out, 32 bits

    Parameters
    ----------
    cipher_key, mac_key : bytes
        The device's stream keys (``firmware.stream_cipher.derive_keys``), build constants.
    """

    i: In(stream.Signature(8))
    o: Out(stream.Signature(8))
    session: In(SESSION_BITS)
    session_valid: In(1)
    frames_sealed: Out(32)
    frames_withheld: Out(32)

    def __init__(self, cipher_key: bytes, mac_key: bytes):
        if len(cipher_key) != CIPHER_KEY_BYTES or len(mac_key) != MAC_KEY_BYTES:
            raise ValueError(f"the link cipher takes a {CIPHER_KEY_BYTES}-byte cipher key and "
                             f"a {MAC_KEY_BYTES}-byte MAC key")
        self._cipher_key = cipher_key
        self._mac_key = mac_key
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.keystream = core = ChaCha20Block()
        m.submodules.mac = mac = SipHash()
        m.d.comb += [core.key.eq(int.from_bytes(self._cipher_key, "little")),
                     mac.key.eq(int.from_bytes(self._mac_key, "little"))]

        header = Signal(8 * HEADER_BYTES)      # the frame's header as taken
        frame_type, seq, length = header[16:24], header[24:56], header[56:72]
        index = Signal(range(HEADER_BYTES))
        left = Signal(16)                      # payload (or withheld) bytes still to come
        sealed = Signal()
        session = Signal(SESSION_BITS)
        crc = Signal(32)
        taken_in = self.i.valid & self.i.ready
        sent = self.o.valid & self.o.ready

        # -- keystream: blocks requested for this frame, double-buffered --------------------
        blocks_wanted = Signal(11)             # still to request (a payload is < 1025 blocks)
        counter = Signal(32)
        keystream = Signal(512)
        keystream_left = Signal(range(65))
        m.d.comb += [
            core.i.valid.eq(blocks_wanted != 0),
            core.i.payload.nonce.eq(Cat(seq, frame_type, session)),
            core.i.payload.counter.eq(counter),
        ]
        with m.If(core.i.valid & core.i.ready):
            m.d.sync += [blocks_wanted.eq(blocks_wanted - 1), counter.eq(counter + 1)]
        consume = Signal()                     # a payload byte is sent sealed this cycle
        load = (keystream_left == 0) | ((keystream_left == 1) & consume)
        m.d.comb += core.o.ready.eq(load)
        with m.If(load & core.o.valid):
            m.d.sync += [keystream.eq(core.o.payload), keystream_left.eq(64)]
        with m.Elif(consume):
            m.d.sync += [keystream.eq(keystream >> 8), keystream_left.eq(keystream_left - 1)]

        # -- tag: the session block, then the header as sent and the ciphertext --------------
        mac_word = Signal(64)
        mac_bytes = Signal(range(8))           # bytes in mac_word
        session_pending = Signal()             # the session block is still to be given
        mac_byte = Signal(8)
        feed = Signal()                        # mac_byte goes into the tag this cycle
        full = mac_bytes == 7
        mac_ready = ~session_pending & (~full | mac.i.ready)   # a byte can be fed
        with m.If(session_pending):
            m.d.comb += [mac.i.valid.eq(1), mac.i.payload.block.eq(session),
                         mac.i.payload.first.eq(1)]
            with m.If(mac.i.ready):
                m.d.sync += session_pending.eq(0)
        with m.If(feed):
            m.d.sync += [mac_word.word_select(mac_bytes, 8).eq(mac_byte),
                         mac_bytes.eq(mac_bytes + 1)]
            with m.If(full):
                m.d.comb += [mac.i.valid.eq(1),
                             mac.i.payload.block.eq(Cat(mac_word[:56], mac_byte))]
                m.d.sync += [mac_word.eq(0), mac_bytes.eq(0)]

        # -- frames ------------------------------------------------------------------------
        out_header = [SYNC[0], SYNC[1], frame_type | Mux(sealed, SEALED, 0),
                      seq[0:8], seq[8:16], seq[16:24], seq[24:32]]
        out_length = length + sealed * TAG_BYTES
        out_header += [out_length[0:8], out_length[8:16]]
        sealable = Cat(frame_type == int(t) for t in SEALABLE_TYPES).any()

        with m.FSM():
            with m.State("HEADER_IN"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(taken_in):
                    m.d.sync += [header.word_select(index, 8).eq(self.i.payload),
                                 index.eq(index + 1)]
                    with m.If(index == HEADER_BYTES - 1):
                        # The length's high byte is on the input now.
                        length_now = Cat(header[56:64], self.i.payload)
                        m.d.sync += index.eq(0)
                        with m.If(sealable & ~self.session_valid):
                            m.d.sync += left.eq(length_now + CRC_BYTES)
                            m.next = "WITHHOLD"
                        with m.Else():
                            m.d.sync += [
                                left.eq(length_now), sealed.eq(sealable),
                                crc.eq(0xFFFFFFFF), session.eq(self.session),
                                counter.eq(0), keystream_left.eq(0),
                                blocks_wanted.eq(Mux(sealable, (length_now + 63) >> 6, 0)),
                                session_pending.eq(sealable),
                                mac_word.eq(0), mac_bytes.eq(0),
                            ]
                            m.next = "HEADER_OUT"
            with m.State("HEADER_OUT"):
                byte = Signal(8)
                with m.Switch(index):
                    for position, value in enumerate(out_header):
                        with m.Case(position):
                            m.d.comb += byte.eq(value)
                m.d.comb += [self.o.payload.eq(byte), mac_byte.eq(byte),
                             self.o.valid.eq(~sealed | mac_ready)]
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index >= len(SYNC)):
                        m.d.sync += crc.eq(crc32_update(crc, byte))
                        m.d.comb += feed.eq(sealed)
                    with m.If(index == HEADER_BYTES - 1):
                        m.d.sync += index.eq(0)
                        with m.If(left != 0):
                            m.next = "PAYLOAD"
                        with m.Elif(sealed):
                            m.next = "TAG_FINAL"
                        with m.Else():
                            m.next = "CRC"
            with m.State("PAYLOAD"):
                byte = self.i.payload ^ (keystream[:8] & sealed.replicate(8))
                can = ~sealed | ((keystream_left != 0) & mac_ready)
                m.d.comb += [self.o.payload.eq(byte), mac_byte.eq(byte),
                             self.o.valid.eq(self.i.valid & can),
                             self.i.ready.eq(self.o.ready & can)]
                with m.If(sent):
                    m.d.comb += [consume.eq(sealed), feed.eq(sealed)]
                    m.d.sync += [crc.eq(crc32_update(crc, byte)), left.eq(left - 1)]
                    with m.If((left == 1) & sealed):
                        m.next = "TAG_FINAL"
                    with m.Elif(left == 1):
                        m.next = "CRC"
            with m.State("TAG_FINAL"):
                # The last block: the bytes left and the message length (mod 256) on top:
                # 8 (session) + 7 (header) + the ciphertext.
                total = (length + 15)[:8]
                m.d.comb += [mac.i.valid.eq(1), mac.i.payload.last.eq(1),
                             mac.i.payload.block.eq(Cat(mac_word[:56], total))]
                with m.If(mac.i.ready):
                    m.d.sync += [mac_word.eq(0), mac_bytes.eq(0)]
                    m.next = "TAG"
            with m.State("TAG"):
                byte = mac.o.payload.word_select(index[:3], 8)
                m.d.comb += [self.o.payload.eq(byte), self.o.valid.eq(mac.o.valid)]
                with m.If(sent):
                    m.d.sync += [crc.eq(crc32_update(crc, byte)), index.eq(index + 1)]
                    with m.If(index == TAG_BYTES - 1):
                        m.d.comb += mac.o.ready.eq(1)
                        m.d.sync += index.eq(0)
                        m.next = "CRC"
            with m.State("CRC"):
                # The framer's CRC bytes are taken as ours go out.
                m.d.comb += [self.o.payload.eq((~crc).word_select(index[:2], 8)),
                             self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == CRC_BYTES - 1):
                        m.d.sync += index.eq(0)
                        with m.If(sealed):
                            m.d.sync += self.frames_sealed.eq(self.frames_sealed + 1)
                        m.next = "HEADER_IN"
            with m.State("WITHHOLD"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(taken_in):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.d.sync += self.frames_withheld.eq(self.frames_withheld + 1)
                        m.next = "HEADER_IN"
        return m
