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
    the current one is used), the tag about 7 cycles after the last payload byte (one
    more when that byte completes an 8-byte MAC block, which the tag core takes from a
    register). Per frame about 9 + 32 + 8 cycles more than the frame's bytes (9 for a clear
    frame).

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

        s = _CipherState()
        s.header = Signal(8 * HEADER_BYTES)      # the frame's header as taken
        s.frame_type, s.seq, s.length = s.header[16:24], s.header[24:56], s.header[56:72]
        s.index = Signal(range(HEADER_BYTES))
        s.left = Signal(16)                      # payload (or withheld) bytes still to come
        s.sealed = Signal()
        s.session = Signal(SESSION_BITS)
        s.crc = Signal(32)
        s.taken_in = self.i.valid & self.i.ready
        s.sent = self.o.valid & self.o.ready
        self._keystream(m, core, s)
        self._tag_input(m, mac, s)

        with m.FSM():
            self._take_header(m, s)
            self._send_header(m, s)
            self._send_payload(m, s)
            self._send_tag(m, mac, s)
            self._send_crc(m, s)
            self._withhold(m, s)
        return m

    @staticmethod
    def _keystream(m: Module, core: ChaCha20Block, s: "_CipherState") -> None:
        """Keystream: blocks requested for this frame, double-buffered; ``s.consume`` takes
        a byte of it."""
        s.blocks_wanted = Signal(11)           # still to request (a payload is < 1025 blocks)
        s.counter = Signal(32)
        s.keystream = Signal(512)
        s.keystream_left = Signal(range(65))
        m.d.comb += [
            core.i.valid.eq(s.blocks_wanted != 0),
            core.i.payload.nonce.eq(Cat(s.seq, s.frame_type, s.session)),
            core.i.payload.counter.eq(s.counter),
        ]
        with m.If(core.i.valid & core.i.ready):
            m.d.sync += [s.blocks_wanted.eq(s.blocks_wanted - 1), s.counter.eq(s.counter + 1)]
        s.consume = Signal()                   # a payload byte is sent sealed this cycle
        load = (s.keystream_left == 0) | ((s.keystream_left == 1) & s.consume)
        m.d.comb += core.o.ready.eq(load)
        with m.If(load & core.o.valid):
            m.d.sync += [s.keystream.eq(core.o.payload), s.keystream_left.eq(64)]
        with m.Elif(s.consume):
            m.d.sync += [s.keystream.eq(s.keystream >> 8),
                         s.keystream_left.eq(s.keystream_left - 1)]

    @staticmethod
    def _tag_input(m: Module, mac: SipHash, s: "_CipherState") -> None:
        """Tag: the session block, then the header as sent and the ciphertext, gathered into
        8-byte blocks (``s.feed`` puts ``s.mac_byte`` in; ``s.mac_ready``: it can).

        A completed block goes to the SipHash core from a register (``s.mac_block``), the
        cycle after its last byte: the byte comes from the framer's buffer through the
        keystream XOR, and the core runs a SipRound in the cycle it takes a block, so
        handing it over in the same cycle put the buffer's read, the XOR and a SipRound's
        three 64-bit additions on one path (41.8 of 45 MHz on the ULX3S-85F)."""
        s.mac_word = Signal(64)
        s.mac_bytes = Signal(range(8))         # bytes in mac_word
        s.session_pending = Signal()           # the session block is still to be given
        s.mac_block = Signal(64)               # a completed block for the core
        s.mac_block_valid = Signal()           # ... not taken yet
        s.mac_byte = Signal(8)
        s.feed = Signal()                      # mac_byte goes into the tag this cycle
        full = s.mac_bytes == 7
        s.mac_ready = ~s.session_pending & (~full | ~s.mac_block_valid)  # a byte can be fed
        with m.If(s.session_pending):
            m.d.comb += [mac.i.valid.eq(1), mac.i.payload.block.eq(s.session),
                         mac.i.payload.first.eq(1)]
            with m.If(mac.i.ready):
                m.d.sync += s.session_pending.eq(0)
        with m.Elif(s.mac_block_valid):
            m.d.comb += [mac.i.valid.eq(1), mac.i.payload.block.eq(s.mac_block)]
            with m.If(mac.i.ready):
                m.d.sync += s.mac_block_valid.eq(0)
        with m.If(s.feed):
            m.d.sync += [s.mac_word.word_select(s.mac_bytes, 8).eq(s.mac_byte),
                         s.mac_bytes.eq(s.mac_bytes + 1)]
            with m.If(full):
                m.d.sync += [s.mac_block.eq(Cat(s.mac_word[:56], s.mac_byte)),
                             s.mac_block_valid.eq(1), s.mac_word.eq(0), s.mac_bytes.eq(0)]

    def _take_header(self, m: Module, s: "_CipherState") -> None:
        """``HEADER_IN``: the 9 header bytes taken; then the frame is withheld or sent (sealed
        or clear), and a sealed frame's keystream and tag started."""
        sealable = Cat(s.frame_type == int(t) for t in SEALABLE_TYPES).any()
        with m.State("HEADER_IN"):
            m.d.comb += self.i.ready.eq(1)
            with m.If(s.taken_in):
                m.d.sync += [s.header.word_select(s.index, 8).eq(self.i.payload),
                             s.index.eq(s.index + 1)]
                with m.If(s.index == HEADER_BYTES - 1):
                    # The length's high byte is on the input now.
                    length_now = Cat(s.header[56:64], self.i.payload)
                    m.d.sync += s.index.eq(0)
                    with m.If(sealable & ~self.session_valid):
                        m.d.sync += s.left.eq(length_now + CRC_BYTES)
                        m.next = "WITHHOLD"
                    with m.Else():
                        m.d.sync += [
                            s.left.eq(length_now), s.sealed.eq(sealable),
                            s.crc.eq(0xFFFFFFFF), s.session.eq(self.session),
                            s.counter.eq(0), s.keystream_left.eq(0),
                            s.blocks_wanted.eq(Mux(sealable, (length_now + 63) >> 6, 0)),
                            s.session_pending.eq(sealable),
                            s.mac_word.eq(0), s.mac_bytes.eq(0),
                        ]
                        m.next = "HEADER_OUT"

    def _send_header(self, m: Module, s: "_CipherState") -> None:
        """``HEADER_OUT``: the header as sent (a sealed frame's type and length marked),
        into the CRC and (sealed) the tag."""
        out_header = [SYNC[0], SYNC[1], s.frame_type | Mux(s.sealed, SEALED, 0),
                      s.seq[0:8], s.seq[8:16], s.seq[16:24], s.seq[24:32]]
        out_length = s.length + s.sealed * TAG_BYTES
        out_header += [out_length[0:8], out_length[8:16]]
        with m.State("HEADER_OUT"):
            byte = Signal(8)
            with m.Switch(s.index):
                for position, value in enumerate(out_header):
                    with m.Case(position):
                        m.d.comb += byte.eq(value)
            m.d.comb += [self.o.payload.eq(byte), s.mac_byte.eq(byte),
                         self.o.valid.eq(~s.sealed | s.mac_ready)]
            with m.If(s.sent):
                m.d.sync += s.index.eq(s.index + 1)
                with m.If(s.index >= len(SYNC)):
                    m.d.sync += s.crc.eq(crc32_update(s.crc, byte))
                    m.d.comb += s.feed.eq(s.sealed)
                with m.If(s.index == HEADER_BYTES - 1):
                    m.d.sync += s.index.eq(0)
                    with m.If(s.left != 0):
                        m.next = "PAYLOAD"
                    with m.Elif(s.sealed):
                        m.next = "TAG_FINAL"
                    with m.Else():
                        m.next = "CRC"

    def _send_payload(self, m: Module, s: "_CipherState") -> None:
        """``PAYLOAD``: the payload, XORed with the keystream when sealed, a byte per clock."""
        with m.State("PAYLOAD"):
            sealed = s.sealed
            byte = self.i.payload ^ (s.keystream[:8] & sealed.replicate(8))
            can = ~sealed | ((s.keystream_left != 0) & s.mac_ready)
            m.d.comb += [self.o.payload.eq(byte), s.mac_byte.eq(byte),
                         self.o.valid.eq(self.i.valid & can),
                         self.i.ready.eq(self.o.ready & can)]
            with m.If(s.sent):
                m.d.comb += [s.consume.eq(sealed), s.feed.eq(sealed)]
                m.d.sync += [s.crc.eq(crc32_update(s.crc, byte)), s.left.eq(s.left - 1)]
                with m.If((s.left == 1) & sealed):
                    m.next = "TAG_FINAL"
                with m.Elif(s.left == 1):
                    m.next = "CRC"

    def _send_tag(self, m: Module, mac: SipHash, s: "_CipherState") -> None:
        """``TAG_FINAL``, ``TAG``: the tag's last block given, then its 8 bytes sent."""
        with m.State("TAG_FINAL"):
            # The last block: the bytes left and the message length (mod 256) on top:
            # 8 (session) + 7 (header) + the ciphertext. After the block before it.
            total = (s.length + 15)[:8]
            with m.If(~s.mac_block_valid):
                m.d.comb += [mac.i.valid.eq(1), mac.i.payload.last.eq(1),
                             mac.i.payload.block.eq(Cat(s.mac_word[:56], total))]
                with m.If(mac.i.ready):
                    m.d.sync += [s.mac_word.eq(0), s.mac_bytes.eq(0)]
                    m.next = "TAG"
        with m.State("TAG"):
            byte = mac.o.payload.word_select(s.index[:3], 8)
            m.d.comb += [self.o.payload.eq(byte), self.o.valid.eq(mac.o.valid)]
            with m.If(s.sent):
                m.d.sync += [s.crc.eq(crc32_update(s.crc, byte)), s.index.eq(s.index + 1)]
                with m.If(s.index == TAG_BYTES - 1):
                    m.d.comb += mac.o.ready.eq(1)
                    m.d.sync += s.index.eq(0)
                    m.next = "CRC"

    def _send_crc(self, m: Module, s: "_CipherState") -> None:
        """``CRC``: our CRC out as the framer's is taken; the frame is done."""
        with m.State("CRC"):
            # The framer's CRC bytes are taken as ours go out.
            m.d.comb += [self.o.payload.eq((~s.crc).word_select(s.index[:2], 8)),
                         self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
            with m.If(s.sent):
                m.d.sync += s.index.eq(s.index + 1)
                with m.If(s.index == CRC_BYTES - 1):
                    m.d.sync += s.index.eq(0)
                    with m.If(s.sealed):
                        m.d.sync += self.frames_sealed.eq(self.frames_sealed + 1)
                    m.next = "HEADER_IN"

    def _withhold(self, m: Module, s: "_CipherState") -> None:
        """``WITHHOLD``: a sealable frame without a session, taken whole and not sent."""
        with m.State("WITHHOLD"):
            m.d.comb += self.i.ready.eq(1)
            with m.If(s.taken_in):
                m.d.sync += s.left.eq(s.left - 1)
                with m.If(s.left == 1):
                    m.d.sync += self.frames_withheld.eq(self.frames_withheld + 1)
                    m.next = "HEADER_IN"


class _CipherState:
    """The signals :class:`LinkCipher`'s stages share (made in ``elaborate`` and the
    keystream and tag stages)."""
