"""``spikeforge decrypt``: an encrypted recording (``record --encrypt-to``) back to its Open
Ephys folder, byte for byte (:mod:`spikeforge.host.encrypted_recording`).

Exit status: 0 when the whole recording was restored; 1 when part of it was (a recording
cut by ``kill -9``: up to its last flush; an altered chunk: up to the chunk before), every
failure named with its file, chunk and byte offset; 2 for a wrong or unreadable key, or an
input that is not an encrypted recording (nothing is written then).
"""

import argparse
import sys
from pathlib import Path

from spikeforge.host.errors import ExitCode

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "decrypt", help="restore the Open Ephys folder of an encrypted recording",
        description="Decrypt a recording made with `spikeforge record --encrypt-to`: the Open "
                    "Ephys folder it would have written, byte for byte. A recording cut "
                    "short (kill -9) is restored up to its last flush.")
    parser.add_argument("--key", required=True, metavar="PRIVATE",
                        help="the recipient's private key file (`spikeforge key "
                             "new-recipient`; mode 0600)")
    parser.add_argument("source", metavar="IN",
                        help="the encrypted recording's folder (or its recording.sfenc)")
    parser.add_argument("out", metavar="OUT", help="the Open Ephys folder to create")
    parser.set_defaults(run=cmd_decrypt)


def cmd_decrypt(args: argparse.Namespace) -> int:
    from spikeforge.host.encrypted_recording import decrypt_recording, load_secret

    secret = load_secret(Path(args.key))
    result = decrypt_recording(Path(args.source), Path(args.out), secret)
    for failure in result.failures:
        print(f"spikeforge: {failure.kind}: {failure.message}", file=sys.stderr)
    print(result.summary())
    return ExitCode.OK if result.complete and not result.failures else ExitCode.FAILURE
