"""A played device for the privacy tests: a TCP server that answers commands with the command
decoder's golden model and streams IDENTITY frames and, once the host writes STREAM_ENABLE=1,
DATA frames from seq 0 whose samples are a function of the sweep number (so two recordings
of it are the same recording). With ``stream_cipher`` it is a cipher build as the link
cipher's golden model makes it: DATA frames are withheld (counted) until the host writes
CIPHER_SESSION_LO then HI, sealed under that session from then on, and the session registers
refuse writes once set."""

import select
import socket
import threading

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import REGISTERS, register
from spikeforge.firmware.stream_cipher import derive_keys
from spikeforge.firmware.wire import FrameType, build_frame, encode_identity
from spikeforge.sim.models.cipher import seal_frame
from spikeforge.sim.models.control import CommandDecoderModel

KEY_HEX = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"


def sweep_samples(config: SystemConfig, first_sweep: int, sweeps: int) -> np.ndarray:
    """The played stream: sample (sweep s, channel c) = (7 s + 1000 c) mod 2**16 - 2**15."""
    sweep = np.arange(first_sweep, first_sweep + sweeps)[:, None]
    channel = np.arange(config.channels)[None, :]
    return ((7 * sweep + 1000 * channel) % 65536 - 32768).astype("<i2")


class PlayedDevice:
    def __init__(self, config: SystemConfig, *, frame_period_s: float = 0.001):
        self.config = config
        self.status = {r.name: 0 for r in REGISTERS if r.access == "status"}
        self.status.update(ENABLED_CHANNELS=config.channels,   # every channel, as at reset
                           CHANNEL_MASK_IN_FORCE=config.channel_mask_words[0])
        self.model = CommandDecoderModel(config)
        self.model.status = self.status       # live: the counters below as they change
        self.cipher_keys = (derive_keys(config.control_key_bytes)
                            if config.stream_cipher else None)
        self.session: int | None = None
        self.withheld = 0
        self.frames = 0     #: DATA frames sent (their seq goes on across hosts)
        self.frame_period_s = frame_period_s
        self._protect_session()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _protect_session(self) -> None:
        low, high = (register("CIPHER_SESSION_LO").address,
                     register("CIPHER_SESSION_HI").address)
        bank = self.model.bank
        write = bank.write

        def guarded(address: int, value: int) -> None:
            if address in (low, high) and self.session is not None:
                return      # set once per boot
            write(address, value)
            if address == high and self.config.stream_cipher:
                self.session = (bank.read(low, {}) | bank.read(high, {}) << 32)

        bank.write = guarded

    def _streaming(self) -> bool:
        address = register("STREAM_ENABLE").address
        writes = [value for a, value in self.model.writes if a == address]
        return bool(writes) and writes[-1] == 1

    def _run(self) -> None:
        """One host after another (the device keeps its state: a second open is the same
        boot)."""
        while not self.stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self._serve(client)

    def _serve(self, client: socket.socket) -> None:
        identities = ticks = 0
        spf = self.config.sweeps_per_frame
        with client:
            while not self.stop.is_set():
                out = b""
                ticks += 1
                if ticks % 16 == 1:
                    out += build_frame(FrameType.IDENTITY, identities,
                                       encode_identity(self.config))
                    identities += 1
                if self._streaming():
                    frames = self.frames
                    frame = build_frame(FrameType.DATA, frames,
                                        sweep_samples(self.config, frames * spf, spf).tobytes())
                    if self.cipher_keys is None:
                        out += frame
                        self.frames += 1
                    elif self.session is None:
                        self.withheld += 1
                        self.status["CIPHER_FRAMES_WITHHELD"] = self.withheld
                    else:
                        out += seal_frame(frame, *self.cipher_keys, self.session)
                        self.frames += 1
                        self.status["CIPHER_FRAMES_SEALED"] = self.frames
                try:
                    if out:
                        client.sendall(out)
                    ready = select.select([client], [], [], self.frame_period_s)[0]
                    data = client.recv(4096) if ready else None
                except OSError:
                    return
                if data == b"":
                    return
                if data:
                    for reply in self.model.feed(data):
                        try:
                            client.sendall(reply)
                        except OSError:
                            return

    def close(self) -> None:
        self.stop.set()
        self.server.close()
