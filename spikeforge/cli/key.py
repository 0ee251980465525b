"""``spikeforge key``: the control keys of keyed devices (authenticated writes).

``key new NAME`` makes a random 128-bit key in the user's key folder (mode 0600);
``key show NAME`` prints its fingerprint, file and counter (``--reveal``: the key itself);
``key rotate NAME`` replaces it (the old one kept as ``NAME.key.old``);
``key provision NAME --config IN.json -o OUT.json`` writes a build configuration that carries
the key (``SystemConfig.control_key``), mode 0600, for ``spikeforge build --config OUT.json``.
The key reaches the device only through its build (the bitstream): never over the network.

``key new-recipient NAME`` makes an X25519 pair for encrypted recordings: ``NAME.recipient``
(private, mode 0600: keep it off the recording PC) and ``NAME.recipient.pub`` (for
``spikeforge record --encrypt-to``), in the key folder.
"""

import argparse
import json
import os

from spikeforge.host.errors import ExitCode

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "key", help="control keys of keyed devices: new, show, rotate, provision",
        description="Control keys for authenticated writes (docs/wire-format.md). Key files "
                    "live in $SPIKEFORGE_KEY_DIR or ~/.config/spikeforge/keys, mode 0600.")
    actions = parser.add_subparsers(dest="key_action", required=True)
    new = actions.add_parser("new", help="make a random key for a device")
    show = actions.add_parser("show", help="show a key's fingerprint, file and counter")
    show.add_argument("--reveal", action="store_true",
                      help="print the key itself (32 hex digits) too")
    rotate = actions.add_parser("rotate", help="replace a key (old one kept as NAME.key.old)")
    provision = actions.add_parser(
        "provision", help="write a build configuration that carries the key")
    provision.add_argument("--config", metavar="IN.json", required=True,
                           help="the board's configuration file (SystemConfig fields)")
    provision.add_argument("-o", "--out", metavar="OUT.json", required=True,
                           help="the keyed configuration to build from (written mode 0600)")
    for sub in (new, show, rotate, provision):
        sub.add_argument("name", metavar="NAME", help="the device's name, e.g. lab-board")
    recipient = actions.add_parser(
        "new-recipient", help="make an X25519 pair for encrypted recordings (record "
                              "--encrypt-to NAME.recipient.pub, decrypt --key NAME.recipient)")
    recipient.add_argument("name", metavar="NAME", help="whose recordings, e.g. lab-archive")
    parser.set_defaults(run=cmd_key)


def cmd_key(args: argparse.Namespace) -> int:
    from spikeforge.host.keys import load_key, new_key, rotate_key

    action = args.key_action
    if action == "new":
        key = new_key(args.name)
        print(f"new key for {args.name}: fingerprint {key.fingerprint}, in {key.path}")
        print(f"next: spikeforge key provision {args.name} --config BOARD.json -o KEYED.json")
    elif action == "show":
        key = load_key(args.name)
        print(f"{args.name}: fingerprint {key.fingerprint}, file {key.path}, last counter "
              f"{key.last_counter()}")
        if args.reveal:
            print(key.hex)
    elif action == "rotate":
        key = rotate_key(args.name)
        print(f"rotated {args.name}: new fingerprint {key.fingerprint}; the old key is in "
              f"{key.path.with_suffix('.key.old')} until the device runs the new one.")
        print(f"next: spikeforge key provision {args.name} --config BOARD.json -o KEYED.json,"
              " rebuild and flash; then delete the .old file")
    elif action == "new-recipient":
        _new_recipient(args.name)
    else:
        _provision(args)
    return ExitCode.OK


def _new_recipient(name: str) -> None:
    from spikeforge.host.encrypted_recording import new_recipient
    from spikeforge.host.keys import KeyFileError, key_folder

    if not name or "/" in name or name.startswith("."):
        raise KeyFileError(f"a recipient's name is a file name (letters, digits, '.', '_', "
                           f"'-'), not {name!r}; e.g. 'lab-archive'")
    secret, recipient = new_recipient(key_folder() / f"{name}.recipient")
    print(f"new recipient {name}: fingerprint {recipient.fingerprint}")
    print(f"  public (for record --encrypt-to): {recipient.path}")
    print(f"  private (for decrypt --key; mode 0600, keep it off the recording PC and backed "
          f"up: without it the recordings are lost): {secret.path}")


def _provision(args: argparse.Namespace) -> None:
    from spikeforge.firmware.config import SystemConfig, read_config_file
    from spikeforge.host.keys import load_key

    key = load_key(args.name)
    fields = read_config_file(args.config)
    fields["control_key"] = key.hex
    config = SystemConfig.from_dict(fields)        # validates, e.g. that it has control
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(config.to_dict(), out, indent=2)
        out.write("\n")
    print(f"wrote {args.out} (mode 0600): {config.describe()}, key {key.fingerprint}")
    print(f"next: spikeforge build --config {args.out} ...; keep {args.out} as secret as the "
          "key file, never commit it")
