"""harden.yml benchmark: first run, no-change re-run and check mode on 1 and on N fresh lab hosts.

Prints one table (`make bench`). The bar (issue 10): the no-change re-run in at most 8 s on one host, and
N hosts in at most 1.5 times that. Each lab is made fresh (`make lab`'s hosts, inventories/lab): one host,
then N. Module calls are counted per host by tests/bench/callback_plugins/bulwark_calls.py. The machine's
load average is printed with the figures: they mean little on a machine busy with other work.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.lab import hosts, images
from tests.lab.engine import ensure_engine

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = ["ansible-playbook", "-i", "inventories/lab", "playbooks/harden.yml"]
BAR_ONE, BAR_RATIO = 8.0, 1.5


def play(*extra):
    """Run harden.yml; returns (seconds, changed count over all hosts, module calls per host)."""
    with tempfile.TemporaryDirectory() as tmp:
        calls_file = Path(tmp, "calls.json")
        env = {
            **os.environ,
            "ANSIBLE_CALLBACK_PLUGINS": str(PROJECT / "tests/bench/callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "bulwark_calls",
            # ansible-core 2.20+ adds a module's `invocation` (what the callback counts) only when asked.
            "ANSIBLE_INJECT_INVOCATION": "true",
            "BULWARK_CALLS_FILE": str(calls_file),
        }
        started = time.monotonic()
        done = subprocess.run(
            [*PLAYBOOK, *extra], cwd=PROJECT, capture_output=True, text=True, env=env, check=False
        )
        seconds = time.monotonic() - started
        if done.returncode != 0:
            sys.exit(f"harden.yml {' '.join(extra)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
        calls = {host: c["module_calls"] for host, c in json.loads(calls_file.read_text()).items()}
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", done.stdout))
    return seconds, changed, calls


def measure(client, count):
    """The three runs on `count` fresh hosts: {run: (seconds, changed, calls per host)}."""
    hosts.up(client, count, PROJECT / ".lab", PROJECT / "inventories/lab", log=lambda *_unused: None)
    figures = {"first": play()}
    figures["no-change"] = play()
    figures["check"] = play("--check", "--diff")
    return figures


def load():
    return os.getloadavg()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    args = parser.parse_args()
    client = ensure_engine()
    images.build_all(client)
    loads = [load()]
    one = measure(client, 1)
    loads.append(load())
    fleet = measure(client, args.hosts)
    loads.append(load())

    rows = [
        ("first run", "first"),
        ("no-change re-run", "no-change"),
        ("check mode (--check --diff)", "check"),
    ]
    averages = ", ".join(f"{x:.1f}" for x in loads)
    print(
        f"\nharden.yml on lab hosts ({os.cpu_count()} cores; load average {averages} before, between, after)"
    )
    print(f"{'':34} {'1 host':>9} {f'{args.hosts} hosts':>9} {'ratio':>6}  changed (1 / {args.hosts})")
    for label, key in rows:
        (s1, c1, _calls1), (sn, cn, _callsn) = one[key], fleet[key]
        print(f"{label:34} {s1:>8.1f}s {sn:>8.1f}s {sn / s1:>6.2f}  {c1} / {cn}")
    calls_one = "/".join(map(str, sorted(set(one["no-change"][2].values()))))
    calls_fleet = "/".join(map(str, sorted(set(fleet["no-change"][2].values()))))
    print(f"{'module calls per host (no-change)':34} {calls_one:>9} {calls_fleet:>9}")
    s1, sn = one["no-change"][0], fleet["no-change"][0]
    print(
        f"bar: no-change re-run on 1 host <= {BAR_ONE:.0f} s: {'met' if s1 <= BAR_ONE else 'missed'}; "
        f"{args.hosts} hosts <= {BAR_RATIO} x 1 host: {'met' if sn <= BAR_RATIO * s1 else 'missed'}"
    )
    if one["no-change"][1] or fleet["no-change"][1]:
        sys.exit("a no-change re-run reported changes")
    if one["check"][1] or fleet["check"][1]:
        sys.exit("check mode predicted changes on hosts a no-change run had just left alone")


if __name__ == "__main__":
    main()
