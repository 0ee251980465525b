"""Golden model of the Ethernet link's learned host (:class:`~spikeforge.hdl.ethernet.link.
EthernetLink` with :class:`~spikeforge.hdl.ethernet.ip_rx.LearnedHost`): which sender the
board's data and replies go to, and which replies leave at all.

The rule (docs/wire-format.md, "Over UDP"): the host is the sender of the first command the
decoder carries out — in keyed builds (``config.control_key``) the first whose tag and
counter checked (an authenticated command carried out); later commands, from any sender,
do not move it. Replies go to the host. In keyed builds a reply produced while no host is
learned (to a plain read, or a refusal) is discarded; without a key none can be produced
then (every command carried out names the host before its reply).
"""

from dataclasses import dataclass

from .control import CommandDecoderModel

__all__ = ["Sender", "LearnedHostModel"]


@dataclass(frozen=True)
class Sender:
    """A command datagram's source: MAC, IPv4 address and UDP port, as integers."""

    mac: int
    ip: int
    port: int


class LearnedHostModel:
    """Commands in as datagrams from senders (through ``decoder``), replies out to the host.

    ``host`` is the learned host (None before one is); ``discarded`` counts the replies
    dropped because none was learned yet.
    """

    def __init__(self, decoder: CommandDecoderModel):
        self.decoder = decoder
        self.keyed = decoder.key is not None
        self.host: Sender | None = None
        self.discarded = 0

    def datagram(self, sender: Sender, payload: bytes) -> list[tuple[Sender, bytes]]:
        """One command datagram's payload from ``sender``; returns the replies it causes,
        each with the host it goes to, in order."""
        sent = []
        for byte in payload:
            carried = len(self.decoder.carried_out)
            replies = self.decoder.feed(bytes([byte]))
            for authenticated in self.decoder.carried_out[carried:]:
                if self.host is None and (authenticated or not self.keyed):
                    self.host = sender
            for reply in replies:
                if self.host is None:
                    assert self.keyed, "an unkeyed build answered before learning its host"
                    self.discarded += 1
                else:
                    sent.append((self.host, reply))
        return sent
