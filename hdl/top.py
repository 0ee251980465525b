"""The board-independent acquisition system: source -> framer -> link (UART or Gigabit
Ethernet), with the conditioning and detection path (source -> conditioner -> detector ->
framer events)."""

from amaranth.hdl import C, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import (
    AUTH_COUNTERS,
    CODEBOOK_WRITABLE,
    GRID_WRITABLE,
    PRIOR_WRITABLE,
    WEIGHTS_WRITABLE,
    register,
)
from spikeforge.firmware.stream_cipher import derive_keys
from spikeforge.firmware.wire import BandwidthMode, available_modes, has_control_path

from .channel_mask import ChannelMask
from .compressor import Compressor
from .conditioner import Conditioner
from .control import CommandDecoder, LinkArbiter
from .decimator import Decimator
from .detector import Detector
from .epoch_store import EpochStore
from .ethernet.link import COUNTER_PORTS, EthernetLink
from .framer import Framer
from .link_cipher import LinkCipher
from .lossless_v2 import LosslessV2
from .registers import RegisterBank, RegisterBus
from .rhd2000 import RHDFrontEnd
from .source import TestSource
from .uart import UARTReceiver, UARTTransmitter

__all__ = ["AcquisitionSystem"]

#: How long the overflow indicator stays on after a dropped frame, in seconds.
OVERFLOW_HOLD_S = 0.125


class AcquisitionSystem(wiring.Component):
    """Everything between the sample source and the serial line, for one configuration.

    Ports
    -----
    uart_tx : out
        8N1 serial line to the host at ``config.baud``; idles high.
    uart_rx : in
        8N1 serial line from the host (commands, :mod:`spikeforge.hdl.control`); idles
        high. Only listened to when the configuration has the control path
        (``wire.has_control_path``: at least ``MIN_RX_DIVISOR`` cycles per bit); replies
        share ``uart_tx`` with the frames, between frames.
    streaming : out
        High while the stream is enabled (for a status LED).
    overflow : out
        High for 125 ms after a frame was dropped because the link was too slow.
    registers : :class:`RegisterBus`, in
        Access to the register map for another controller (benches). Tie ``w_en`` low when
        there is none. While the command decoder carries out a command (2 cycles) its
        address and value win; writes from both are not expected at once. A
        ``CHANNEL_MASK`` write needs its value on ``w_data`` one cycle before ``w_en``, and
        ``CHANNEL_MASK_INDEX`` written at least three cycles before (the bank shows it a
        cycle after its write, and the mask counts the words two cycles ahead,
        :class:`~spikeforge.hdl.channel_mask.ChannelMask`); the decoder's commands are.
    rhd_cs, rhd_sclk, rhd_mosi : out; rhd_miso : in, one bit per chip
        Only when ``config.source == "rhd"``: the RHD2000 SPI bus
        (:class:`~spikeforge.hdl.rhd2000.RHDFrontEnd`), controlled by the RHD_* registers.
        At reset the front-end runs the set-up list and then the conversion loop.
    chip_found : out
        Only with the RHD source: the start-up calibration found a chip (status LED).

    Ethernet (``config.link == "ethernet"``): no ``uart_tx``/``uart_rx``; instead GMII
    ports, in two more clock domains the board top creates (and the RGMII adapters,
    :mod:`~spikeforge.hdl.ethernet.rgmii_tx` / :mod:`~spikeforge.hdl.ethernet.rgmii_rx`):

    gmii_tx_data : out(8), gmii_tx_en, gmii_tx_er : out, domain ``link`` (125 MHz)
    gmii_rx_data : in(8), gmii_rx_dv, gmii_rx_er : in, domain ``eth_rx`` (the PHY's 125 MHz
        receive clock)

    The framer's frames and the command decoder's replies leave as UDP datagrams and
    commands arrive as UDP datagrams (:class:`~spikeforge.hdl.ethernet.link.EthernetLink`,
    which owns every clock-domain crossing); the control path is always built. The ETH_*
    registers give its counters, the learned host and the board's MAC and IP (reset from
    ``config.ethernet``).

    Bandwidth modes (register ``BANDWIDTH_MODE``, :class:`~spikeforge.hdl.framer.Framer`):
    with ``config.codec.enabled`` a :class:`~spikeforge.hdl.compressor.Compressor` takes the
    same sample stream as the framer (it is always ready, so the fan-out never stalls) and
    its words go to the framer's COMPRESSED path. With ``config.lfp`` a
    :class:`~spikeforge.hdl.decimator.Decimator` takes the same stream (the framer always
    takes its output, so it never stalls) and its decimated sweeps go to the framer's LFP
    path (mode events+lfp). A write of a mode the build lacks
    (``wire.available_modes``) is not passed to the register bank, so the register keeps,
    and reads back, the mode in force.

    Codebook (``config.codec.codebook``): the coder's value table, base, multiplier and
    shift are the CODEBOOK_* registers, loaded by the host (``Device.load_codebook``). Their
    writes are refused while BANDWIDTH_MODE is lossless and until the coder's next block
    after leaving it (see :meth:`_codebook`): load the table in another mode, then switch.
    The v2 coder's value grid (GRID_*, :meth:`_grid`), code weights (WEIGHT_PAIR,
    WEIGHTS_ON, :meth:`_weights`) and restart prior (PRIOR_ENTRY, PRIOR_ON, :meth:`_prior`)
    are locked the same way.

    The sample source is :class:`~spikeforge.hdl.source.TestSource` or
    :class:`~spikeforge.hdl.rhd2000.RHDFrontEnd`; both emit the same stream with the same
    timing, so nothing downstream knows which one it is.
    """

    def __init__(self, config: SystemConfig, *, identity: SystemConfig | None = None,
                 coder_domain: str = "sync"):
        """``identity``: the configuration the device reports (default ``config``): a
        virtual board that runs the design on a faster clock reports its board's.
        ``coder_domain``: the clock domain of the v2 lossless coder (``codec_v2`` builds;
        :class:`~spikeforge.hdl.lossless_v2.LosslessV2`): ``sync``, or a domain the board
        top makes (the ULX3S's ``coder``)."""
        self.config = config
        self._identity = identity
        self._coder_domain = coder_domain
        if config.link == "ethernet":
            members = {
                "gmii_tx_data": Out(8), "gmii_tx_en": Out(1), "gmii_tx_er": Out(1),
                "gmii_rx_data": In(8), "gmii_rx_dv": In(1), "gmii_rx_er": In(1),
            }
        else:
            members = {"uart_tx": Out(1, init=1), "uart_rx": In(1)}
        members |= {
            "streaming": Out(1),
            "overflow": Out(1),
            "registers": In(RegisterBus()),
        }
        if config.control_key is not None:
            # Keyed builds: the configuration flash's SPI pins (the spent epochs, EpochStore).
            members.update({"flash_sck": Out(1), "flash_cs_n": Out(1, init=1),
                            "flash_copi": Out(1), "flash_cipo": In(1)})
        if config.source == "rhd":
            members.update({"rhd_cs": Out(1, init=1), "rhd_sclk": Out(1), "rhd_mosi": Out(1),
                            "rhd_miso": In(config.rhd.lines), "chip_found": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        config = self.config
        m = Module()
        if config.source == "rhd":
            m.submodules.source = source = RHDFrontEnd(config)
        else:
            m.submodules.source = source = TestSource(config)
        m.submodules.framer = framer = Framer(config, identity=self._identity)
        # encrypted stream: the frames reach the link through the cipher (stream_cipher)
        self._frames, cipher = self._link_cipher(m, framer)
        compressor = self._compressor(m, framer)
        ethernet = config.link == "ethernet"
        if not ethernet:
            m.submodules.uart = uart = self._uart_transmitter(config.uart_divisor)
        m.submodules.bank = bank = RegisterBank(config)
        # codebook: codebook writes are refused while this is high (see _codebook)
        self._codebook_lock = (Signal(name="codebook_lock") if config.codec.codebook
                               or self._loaded_v2_tables() else None)
        if ethernet:
            bus = self._ethernet(m, framer, bank)
        else:
            bus = self._control(m, framer, uart, bank)
            m.d.comb += self.uart_tx.eq(uart.tx)
        self._channel_mask(m, source, framer, bank, bus)
        if cipher is not None:
            self._cipher_session(m, cipher, bank)
        if not config.detector.enabled:
            wiring.connect(m, source.o, framer.i)
            m.d.comb += framer.events.valid.eq(0)
        else:
            self._detection(m, source, framer, bank, bus)
        m.d.comb += bank.event_frames_sent.eq(framer.event_frames_sent)
        m.d.comb += [
            framer.enable.eq(bank.stream_enable[0]),
            self.streaming.eq(bank.stream_enable[0]),
            bank.frames_sent.eq(framer.frames_sent),
            bank.frames_dropped.eq(framer.frames_dropped),
            bank.source_overruns.eq(source.overruns),
            bank.sweeps.eq(source.sweep),
        ]
        if config.source == "rhd":
            self._connect_rhd(m, source, bank, bus)
        # -- bandwidth modes: the coder takes the framer's input samples too ----------------
        if register("BANDWIDTH_MODE").present(config):   # raw-only builds: mode stays 0
            m.d.comb += framer.mode.eq(bank.bandwidth_mode[:2])
        if compressor is not None:
            m.d.comb += [
                compressor.i.payload.eq(source.o.payload),
                compressor.i.valid.eq(source.o.valid & source.o.ready),
                bank.compressed_blocks_damaged.eq(compressor.blocks_damaged),
            ]
            if config.codec.codebook:
                self._codebook(m, compressor, bank)
            elif self._loaded_v2_tables():
                self._codebook_lock_until_block(m, compressor, bank)
                if config.codec_v2.grid:
                    self._grid(m, compressor, bank)
                if config.codec_v2.code_weights:
                    self._weights(m, compressor, bank)
                if config.codec_v2.restart_prior:
                    self._prior(m, compressor, bank)

        # -- LFP decimator (bandwidth mode 3) ------------------------------------------------
        if config.lfp is not None:
            self._lfp(m, source, framer)

        hold_cycles = int(config.clock_hz * OVERFLOW_HOLD_S)
        hold = Signal(range(hold_cycles + 1))
        last_dropped = Signal(32)
        m.d.sync += last_dropped.eq(framer.frames_dropped)
        with m.If(framer.frames_dropped != last_dropped):
            m.d.sync += hold.eq(hold_cycles)
        with m.Elif(hold != 0):
            m.d.sync += hold.eq(hold - 1)
        m.d.comb += self.overflow.eq(hold != 0)
        return m

    def _uart_transmitter(self, divisor: int) -> wiring.Component:
        """The UART's sending half (a virtual board's byte-wide link replaces it:
        :mod:`spikeforge.sim.virtual_board.top`)."""
        return UARTTransmitter(divisor)

    def _uart_receiver(self, divisor: int) -> wiring.Component:
        """The UART's receiving half (replaced as :meth:`_uart_transmitter`)."""
        return UARTReceiver(divisor)

    def _control(self, m: Module, framer: Framer, uart: UARTTransmitter,
                 bank: RegisterBank):
        """The UART receiver, command decoder and link arbiter, if the configuration has
        the control path; returns the bus the bank sees (decoder and ``registers`` port)."""
        config = self.config
        external = self.registers
        if not has_control_path(config):
            wiring.connect(m, self._frames, uart.i)
            m.d.comb += [
                bank.bus.addr.eq(external.addr),
                bank.bus.w_en.eq(self._write_allowed(external)),
                bank.bus.w_data.eq(external.w_data),
                external.r_data.eq(bank.bus.r_data),
            ]
            return external
        m.submodules.uart_rx = receiver = self._uart_receiver(config.uart_divisor)
        m.submodules.control = control = CommandDecoder(config)
        m.submodules.link = link = LinkArbiter()
        m.d.comb += receiver.rx.eq(self.uart_rx)
        wiring.connect(m, receiver.o, control.i)
        wiring.connect(m, self._frames, link.data)
        wiring.connect(m, control.o, link.reply)
        wiring.connect(m, link.o, uart.i)
        m.d.comb += bank.uart_framing_errors.eq(receiver.framing_errors)
        return self._command_bus(m, control, bank)

    def _ethernet(self, m: Module, framer: Framer, bank: RegisterBank):
        """The Ethernet link with the command decoder (always: the control path is how the
        host is learned); returns the bus the bank sees (decoder and ``registers`` port)."""
        config = self.config
        keyed = config.control_key is not None
        m.submodules.ethernet = link = EthernetLink(config.ethernet, keyed=keyed)
        m.submodules.control = control = CommandDecoder(config)
        wiring.connect(m, self._frames, link.data)
        wiring.connect(m, control.o, link.reply)
        wiring.connect(m, link.command, control.i)
        if keyed:
            # Only a command whose tag and counter checked names the host: anyone on the
            # segment can send a plain read, or a forged or replayed command.
            m.d.comb += link.accept.eq(control.verified)
        else:
            # The decoder carries a command out in the cycle after its counter changes.
            executed = Signal.like(control.commands_executed, name="commands_executed_seen")
            m.d.sync += executed.eq(control.commands_executed)
            m.d.comb += link.accept.eq(executed != control.commands_executed)
        m.d.comb += [
            link.local_mac.eq(Cat(bank.eth_mac_lo, bank.eth_mac_hi[:16])),
            link.local_ip.eq(bank.eth_ip),
            bank.eth_host_ip.eq(link.host_ip),
            self.gmii_tx_data.eq(link.gmii_tx_data),
            self.gmii_tx_en.eq(link.gmii_tx_en),
            self.gmii_tx_er.eq(link.gmii_tx_er),
            link.gmii_rx_data.eq(self.gmii_rx_data),
            link.gmii_rx_dv.eq(self.gmii_rx_dv),
            link.gmii_rx_er.eq(self.gmii_rx_er),
        ]
        for name in COUNTER_PORTS:
            m.d.comb += getattr(bank, name).eq(getattr(link, name))
        return self._command_bus(m, control, bank)

    def _command_bus(self, m: Module, control: CommandDecoder, bank: RegisterBank):
        """The register bus shared by the command decoder and the ``registers`` port."""
        external = self.registers
        bus = RegisterBus().create(path=("bus",))
        ours = control.bus_active
        m.d.comb += [
            bus.addr.eq(Mux(ours, control.bus.addr, external.addr)),
            bus.w_en.eq(control.bus.w_en | external.w_en),
            # The decoder's value stays on the bus between its writes (the channel mask
            # counts a word a cycle before it is written).
            bus.w_data.eq(Mux(external.w_en & ~ours, external.w_data, control.bus.w_data)),
            bank.bus.addr.eq(bus.addr),
            bank.bus.w_en.eq(self._write_allowed(bus)),
            bank.bus.w_data.eq(bus.w_data),
            bus.r_data.eq(bank.bus.r_data),
            control.bus.r_data.eq(bank.bus.r_data),
            external.r_data.eq(bank.bus.r_data),
            bank.commands_executed.eq(control.commands_executed),
            bank.command_errors.eq(control.command_errors),
            bank.commands_dropped.eq(control.commands_dropped),
        ]
        if self.config.control_key is not None:      # keyed builds: authenticated control
            for name in AUTH_COUNTERS:
                m.d.comb += getattr(bank, name.lower()).eq(getattr(control, name.lower()))
            self._epoch_store(m, control, bank)
        return bus

    def _epoch_store(self, m: Module, control: CommandDecoder, bank: RegisterBank) -> None:
        """Keyed builds: the spent epochs in the configuration flash (on the ``flash_*``
        pins), for the decoder's replay floor across resets; AUTH_EPOCHS shows them."""
        m.submodules.epoch_store = store = EpochStore()
        for name in ("high", "ready", "done", "ok"):
            m.d.comb += getattr(control, f"epoch_{name}").eq(getattr(store, name))
        m.d.comb += [
            store.request.eq(control.epoch_request),
            store.raise_to.eq(control.epoch_raise_to),
            bank.auth_epochs.eq(Cat(store.high, C(0, 24 - len(store.high)), store.ready,
                                    store.failed)),
            self.flash_sck.eq(store.flash_sck),
            self.flash_cs_n.eq(store.flash_cs_n),
            self.flash_copi.eq(store.flash_copi),
            store.flash_cipo.eq(self.flash_cipo),
        ]

    def _link_cipher(self, m: Module, framer: Framer):
        """The framer's byte stream for the link, through the link cipher in
        ``stream_cipher`` builds; (stream, cipher or None)."""
        self._session_set = None
        if not self.config.stream_cipher:
            return framer.o, None
        m.submodules.link_cipher = cipher = LinkCipher(
            *derive_keys(self.config.control_key_bytes))
        wiring.connect(m, framer.o, cipher.i)
        self._session_set = Signal(name="cipher_session_set")
        return cipher.o, cipher

    def _cipher_session(self, m: Module, cipher: LinkCipher, bank: RegisterBank) -> None:
        """The cipher's session from CIPHER_SESSION_LO/HI: set by the (authenticated) write
        of HI, then fixed until reset (``_write_allowed`` refuses further writes), so no
        session is used twice in a boot and the host's choice cannot be replaced."""
        high = register("CIPHER_SESSION_HI").address
        with m.If(bank.bus.w_en & (bank.bus.addr == high)):
            m.d.sync += self._session_set.eq(1)
        m.d.comb += [
            cipher.session.eq(Cat(bank.cipher_session_lo, bank.cipher_session_hi[:24])),
            cipher.session_valid.eq(self._session_set),
            bank.cipher_frames_sealed.eq(cipher.frames_sealed),
            bank.cipher_frames_withheld.eq(cipher.frames_withheld),
        ]

    def _write_allowed(self, bus):
        """The bus's write enable, except for a write of a session register once the
        session is set (cipher builds) and a write of a bandwidth mode the build lacks."""
        allowed = self._mode_write_allowed(bus)
        if self._session_set is not None:
            session = ((bus.addr == register("CIPHER_SESSION_LO").address)
                       | (bus.addr == register("CIPHER_SESSION_HI").address))
            allowed = allowed & ~(session & self._session_set)
        return allowed

    def _mode_write_allowed(self, bus):
        """The bus's write enable, except for a write of a bandwidth mode the build lacks
        (the register then keeps the mode in force, and the reply shows it)."""
        if not register("BANDWIDTH_MODE").present(self.config):
            return bus.w_en
        modes = available_modes(self.config)
        accepted = (bus.w_data < 4) & (C(modes, 4).bit_select(bus.w_data[:2], 1))
        mode_address = register("BANDWIDTH_MODE").address
        allowed = bus.w_en & ((bus.addr != mode_address) | accepted)
        if self._codebook_lock is not None:     # codebook: no table change mid-stream
            codec_v2 = self.config.codec_v2
            names = (CODEBOOK_WRITABLE if self.config.codec.codebook else
                     (GRID_WRITABLE if codec_v2.grid else ())
                     + (WEIGHTS_WRITABLE if codec_v2.code_weights else ())
                     + (PRIOR_WRITABLE if codec_v2.restart_prior else ()))
            codebook = Cat(bus.addr == register(name).address for name in names)
            allowed = allowed & ~(codebook.any() & self._codebook_lock)
        return allowed

    def _compressor(self, m: Module, framer: Framer):
        """The lossless coder (codec builds only), its words into the framer."""
        config = self.config
        if config.codec_v2.enabled:
            m.submodules.compressor = compressor = LosslessV2(config, self._coder_domain)
            wiring.connect(m, compressor.o, framer.compressed)
            return compressor
        if not config.codec.enabled:
            return None
        m.submodules.compressor = compressor = Compressor(config)
        wiring.connect(m, compressor.o, framer.compressed)
        return compressor

    def _codebook(self, m: Module, compressor: Compressor, bank: RegisterBank) -> None:
        """The coder's codebook on the CODEBOOK_* registers (``codec.codebook`` builds).

        A write of CODEBOOK_ENTRY stores its bits 16..31 at ``table[low bits]``;
        CODEBOOK_VALUE reads the entry at the index last written. Writes of the table,
        base, multiplier and shift are refused (``_write_allowed``) while BANDWIDTH_MODE is
        lossless and, after it left lossless, until the coder's next block starts: the
        framer admits a block at its first sample only in lossless mode, so every block it
        may send is coded from start to end with one table.
        """
        config = self.config
        bits = config.codec.codebook_bits
        self._codebook_lock_until_block(m, compressor, bank)
        entry_address = register("CODEBOOK_ENTRY").address
        m.d.comb += [
            # bank.bus carries only the writes _write_allowed let through
            compressor.codebook_write.eq(bank.bus.w_en & (bank.bus.addr == entry_address)),
            compressor.codebook_addr.eq(bank.bus.w_data[:bits]),
            compressor.codebook_data.eq(bank.bus.w_data[16:32]),
            compressor.codebook_base.eq(bank.codebook_base[:16]),
            compressor.codebook_multiplier.eq(bank.codebook_multiplier[:16]),
            compressor.codebook_shift.eq(bank.codebook_shift[:5]),
            compressor.codebook_read_addr.eq(bank.codebook_entry[:bits]),
            bank.codebook_value.eq(compressor.codebook_read_data.as_unsigned()),
        ]

    def _codebook_lock_until_block(self, m: Module, compressor, bank: RegisterBank) -> None:
        """The lock on the coder's table registers: lossless, and after it left lossless
        until the coder's next block starts (a block admitted in lossless mode may still be
        being coded). Lossless itself refuses at once: the first block may start the cycle
        after the mode write."""
        lossless = bank.bandwidth_mode[:2] == BandwidthMode.LOSSLESS
        block_open = Signal(name="codebook_block_open")
        with m.If(lossless):
            m.d.sync += block_open.eq(1)
        with m.Elif(compressor.block_start):
            m.d.sync += block_open.eq(0)
        m.d.comb += self._codebook_lock.eq(lossless | block_open)

    def _loaded_v2_tables(self) -> bool:
        """Whether the v2 coder holds tables the host loads (a value grid, code weights, a
        restart prior): their writes share the codebook's lock."""
        codec_v2 = self.config.codec_v2
        return codec_v2.enabled and (codec_v2.grid or codec_v2.code_weights
                                     or codec_v2.restart_prior)

    def _grid(self, m: Module, compressor: LosslessV2, bank: RegisterBank) -> None:
        """The v2 coder's value grid on the GRID_* registers (``codec_v2.grid`` builds): a
        write of GRID_ENTRY stores its bits 12..29 at ``table[bits 0..11]``; writes are
        refused as the codebook's (:meth:`_codebook`), so a block that may be sent is coded
        with one grid from end to end (and a v2 segment, from its sync block on: the framer
        admits v2 blocks only from a sync block after lossless started)."""
        bits = self.config.codec_v2.grid_bits
        entry_address = register("GRID_ENTRY").address
        m.d.comb += [
            compressor.grid_write.eq(bank.bus.w_en & (bank.bus.addr == entry_address)),
            compressor.grid_addr.eq(bank.bus.w_data[:bits]),
            compressor.grid_data.eq(bank.bus.w_data[12:30]),
            compressor.grid_base.eq(bank.grid_base[:18]),
            compressor.grid_reciprocal.eq(bank.grid_reciprocal[:30]),
            compressor.grid_shift.eq(bank.grid_shift[:5]),
            compressor.grid_code_max.eq(bank.grid_code_max[:bits]),
        ]

    def _weights(self, m: Module, compressor: LosslessV2, bank: RegisterBank) -> None:
        """The v2 coder's code weights on WEIGHT_PAIR and WEIGHTS_ON (``codec_v2.code_weights``
        builds): a write of WEIGHT_PAIR stores its bits 16..23 and 24..31 as entries
        ``2 * bits 0..11`` and ``2 * bits 0..11 + 1`` of the padded weight table
        (:func:`~spikeforge.firmware.compression_v2.weight_pair_word`); WEIGHTS_ON bit 0 says
        whether literal frequencies are weighted. Writes are refused as the grid's
        (:meth:`_grid`), so a segment that may be sent is coded with one table throughout."""
        pair_address = register("WEIGHT_PAIR").address
        m.d.comb += [
            compressor.weight_write.eq(bank.bus.w_en & (bank.bus.addr == pair_address)),
            compressor.weight_pair.eq(bank.bus.w_data[0:12]),
            compressor.weight_data.eq(bank.bus.w_data[16:32]),
            compressor.weights_on.eq(bank.weights_on[0]),
        ]

    def _prior(self, m: Module, compressor: LosslessV2, bank: RegisterBank) -> None:
        """The v2 coder's restart prior on PRIOR_ENTRY and PRIOR_ON (``codec_v2.restart_prior``
        builds): a write of PRIOR_ENTRY stores its bits 10..31 as entry c[bits 4..9 + 1] of
        context table bits 0..3 (:func:`~spikeforge.firmware.compression_v2.prior_entry_word`);
        PRIOR_ON bit 0 says whether starts and sync blocks read the prior. Writes are refused
        as the grid's (:meth:`_grid`), so a segment that may be sent restarts from one prior."""
        entry_address = register("PRIOR_ENTRY").address
        m.d.comb += [
            compressor.prior_write.eq(bank.bus.w_en & (bank.bus.addr == entry_address)),
            compressor.prior_context.eq(bank.bus.w_data[0:4]),
            compressor.prior_index.eq(bank.bus.w_data[4:10]),
            compressor.prior_data.eq(bank.bus.w_data[10:32]),
            compressor.prior_on.eq(bank.prior_on[0]),
        ]

    def _channel_mask(self, m: Module, source, framer: Framer, bank: RegisterBank,
                      bus) -> None:
        """The run-time channel mask: which samples the framer puts into DATA frames
        (registers CHANNEL_MASK_INDEX, CHANNEL_MASK, CHANNEL_MASK_IN_FORCE,
        ENABLED_CHANNELS). It changes only while the stream is stopped and the framer
        holds no DATA frame."""
        config = self.config
        m.submodules.channel_mask = mask = ChannelMask(config)
        m.d.comb += [
            mask.valid.eq(source.o.valid),
            mask.channel.eq(source.o.payload.channel),
            framer.keep.eq(mask.keep),
            framer.frame_samples.eq(mask.enabled * config.sweeps_per_frame),
            mask.index.eq(bank.channel_mask_index),
            mask.w_en.eq(bus.w_en & (bus.addr == register("CHANNEL_MASK").address)),
            mask.w_data.eq(bus.w_data),
            mask.allow.eq(~bank.stream_enable[0] & framer.idle),
            bank.channel_mask_in_force.eq(mask.in_force),
            bank.enabled_channels.eq(mask.enabled),
        ]

    def _lfp(self, m: Module, source, framer: Framer) -> None:
        """The LFP decimator (LFP builds only): it takes the same sample stream as the
        framer (the framer always takes its output, so it is always ready and the fan-out
        never stalls the source); its decimated sweeps go to the framer's LFP path. The
        channel mask applies to LFP frames as to DATA frames: the mask bit of each source
        sample, delayed by the decimator's fixed latency, travels with its decimated
        sample."""
        config = self.config
        m.submodules.decimator = decimator = Decimator(config, config.lfp)
        m.d.comb += [
            decimator.i.payload.eq(source.o.payload),
            decimator.i.valid.eq(source.o.valid & source.o.ready),
        ]
        wiring.connect(m, decimator.o, framer.lfp)
        keep = m.submodules.channel_mask.keep
        for stage in range(Decimator.LATENCY):
            delayed = Signal(init=1, name=f"lfp_keep{stage}")
            m.d.sync += delayed.eq(keep)
            keep = delayed
        m.d.comb += framer.lfp_keep.eq(keep)

    def _connect_rhd(self, m: Module, front_end: RHDFrontEnd, bank: RegisterBank,
                     bus) -> None:
        program_data = register("RHD_PROGRAM_DATA").address
        # Control registers that are front-end inputs of the same name.
        for name in ("loop_list", "oneshot_list", "oneshot_request", "aux0", "aux1", "aux2",
                     "miso_delay", "program_addr", "capture_addr"):
            m.d.comb += getattr(front_end, name).eq(getattr(bank, f"rhd_{name}"))
        m.d.comb += [
            self.rhd_cs.eq(front_end.cs),
            self.rhd_sclk.eq(front_end.sclk),
            self.rhd_mosi.eq(front_end.mosi),
            front_end.miso.eq(self.rhd_miso),
            front_end.loop_enable.eq(bank.rhd_control[0]),
            front_end.use_found_delays.eq(bank.rhd_control[1]),
            bank.rhd_oneshot_done.eq(front_end.oneshot_done),
            bank.rhd_chips.eq(front_end.chip_ids),
            self.chip_found.eq(front_end.calibrated & (front_end.chip_ids != 0)),
            bank.rhd_found_delays.eq(Cat(front_end.found_delays,
                                         C(0, 31 - len(front_end.found_delays)),
                                         front_end.calibrated)),
            bank.rhd_good_delays_01.eq(front_end.good_delays[:32]),
            bank.rhd_good_delays_23.eq(front_end.good_delays[32:64]),
            front_end.program_data.eq(bus.w_data),
            front_end.program_write.eq(bus.w_en & (bus.addr == program_data)),
            bank.rhd_capture_data.eq(front_end.capture_data),
            bank.rhd_words.eq(front_end.words),
        ]

    def _detection(self, m, source, framer, bank, bus):
        """Source -> conditioner -> detector -> framer events, with the detection registers."""
        config = self.config
        m.submodules.conditioner = conditioner = Conditioner(config)
        m.submodules.detector = detector = Detector(config)

        # The source feeds the framer (raw DATA) and the conditioner; both are always ready
        # (the detector never stalls the conditioner), so the fan-out never stalls.
        m.d.comb += [
            framer.i.payload.eq(source.o.payload),
            conditioner.i.payload.eq(source.o.payload),
            framer.i.valid.eq(source.o.valid),
            conditioner.i.valid.eq(source.o.valid),
            source.o.ready.eq(framer.i.ready & conditioner.i.ready),
        ]
        wiring.connect(m, conditioner.o, detector.i)
        wiring.connect(m, detector.o, framer.events)
        k_write = bus.w_en & (bus.addr == register("DETECT_K").address)
        m.d.comb += [
            detector.polarity.eq(bank.detect_polarity),
            detector.dead_samples.eq(bank.detect_dead_samples),
            detector.snippet_pre.eq(bank.detect_snippet_pre),
            detector.snippet_post.eq(bank.detect_snippet_post),
            detector.neo.eq(bank.detect_neo[0]),
            detector.k_channel.eq(bank.detect_k_channel),
            detector.k_value.eq(bus.w_data),
            detector.k_write.eq(k_write),
            bank.events_emitted.eq(detector.events_emitted),
            bank.events_dropped.eq(detector.events_dropped),
        ]
