"""harden.yml benchmark: the no-change re-run on 1 host and on N lab hosts (`make bench`).

The bar: under 20 s for one host and under twice that for ten. Brings up the lab (`make lab`'s hosts,
inventories/lab), converges it once, then times re-runs that must report zero changes.
"""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.lab import hosts, images
from tests.lab.engine import ensure_engine

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = ["ansible-playbook", "-i", "inventories/lab", "playbooks/harden.yml"]


def play(*extra):
    """Run harden.yml; returns (seconds, changed count over all hosts)."""
    started = time.monotonic()
    done = subprocess.run([*PLAYBOOK, *extra], cwd=PROJECT, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"harden.yml failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", done.stdout))
    return seconds, changed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    args = parser.parse_args()
    client = ensure_engine()
    images.build_all(client)
    hosts.up(client, args.hosts, PROJECT / ".lab", PROJECT / "inventories/lab")
    first, _changes = play()
    print(f"harden.yml, first run on {args.hosts} fresh hosts: {first:.1f} s")
    one, changed_one = play("--limit", "lab1")
    print(f"harden.yml, no-change re-run on 1 host: {one:.1f} s (changed={changed_one}; bar: 20 s)")
    fleet, changed_all = play()
    print(f"harden.yml, no-change re-run on {args.hosts} hosts: {fleet:.1f} s", end=" ")
    print(f"(changed={changed_all}; bar: 40 s)")


if __name__ == "__main__":
    main()
