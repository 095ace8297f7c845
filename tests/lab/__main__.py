"""The lab: `python -m tests.lab images|up|down` (the Makefile's `lab`, `lab-images`, `lab-down`)."""

import argparse

from . import hosts, images
from .engine import ensure_engine


def main():
    parser = argparse.ArgumentParser(prog="python -m tests.lab")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("images", help="build the Debian base images (only if their recipe changed)")
    build.add_argument("--force", action="store_true", help="rebuild even if the recipe is unchanged")
    start = commands.add_parser("up", help="start N hosts and write the lab inventory")
    start.add_argument("--hosts", type=int, default=3)
    start.add_argument("--lab-dir", default=".lab")
    start.add_argument("--inventory", default="inventories/lab")
    commands.add_parser("down", help="remove the lab's hosts and network")
    key = commands.add_parser("key", help="make the operator's SSH key (Molecule mounts its public half)")
    key.add_argument("--lab-dir", default=".lab")
    args = parser.parse_args()

    if args.command == "key":
        print(*hosts.operator_key(args.lab_dir))
        return
    client = ensure_engine()
    if args.command == "images":
        images.build_all(client, force=args.force)
    elif args.command == "up":
        if args.hosts < 1:
            parser.error("--hosts must be at least 1")
        images.build_all(client)
        hosts.up(client, args.hosts, args.lab_dir, args.inventory)
    else:
        hosts.down(client)


if __name__ == "__main__":
    main()
