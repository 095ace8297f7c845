"""harden.yml benchmark: first run, no-change re-run and check mode on 1 and on N fresh lab hosts, and a
no-change run on the same hosts aged as operators have them.

Prints one table (`make bench`). The bar (issue 10): the no-change re-run in at most 8 s on one host, and
N hosts in at most 1.5 times that. Each lab is made fresh (`make lab`'s hosts, inventories/lab): one host,
then N. The aged run follows on the same hosts, after tests/bench/age_host.sh: package lists whose times
are two days old (as apt leaves them when a refresh finds nothing new) and a pending update (held), so
that the run does what it does on a host an hour or a day after hardening (issue 26: no apt-get update
within the window of the last refresh, at most one package call that runs apt), and once more with
dpkg's lock held by another process when the run starts (it waits, and does not fail).

Per run: wall time; the controller's CPU time per host (user + system of ansible-playbook and every
process it waited for, from getrusage(RUSAGE_CHILDREN)); module calls and apt commands per host, counted by
tests/bench/callback_plugins/bulwark_calls.py. The machine's load average is printed with the figures:
they mean little on a machine busy with other work.
"""

import argparse
import json
import os
import re
import resource
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
LOCK_HELD = 10  # seconds another apt holds dpkg's lock when the "locked" run starts


AGE_HOST = PROJECT / "tests/bench/age_host.sh"


def controller_cpu():
    """User + system seconds of the children this process has waited for (ansible-playbook's whole tree:
    its forks, ssh, the modules' controller side)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def play(*extra):
    """Run harden.yml; returns {seconds, cpu (controller, all hosts), changed (over all hosts), calls and apt
    (per host: module calls, apt commands)}."""
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
        started, cpu = time.monotonic(), controller_cpu()
        done = subprocess.run(
            [*PLAYBOOK, *extra], cwd=PROJECT, capture_output=True, text=True, env=env, check=False
        )
        seconds, cpu = time.monotonic() - started, controller_cpu() - cpu
        if done.returncode != 0:
            sys.exit(f"harden.yml {' '.join(extra)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
        counted = json.loads(calls_file.read_text())
    return {
        "seconds": seconds,
        "cpu": cpu,
        "changed": sum(int(n) for n in re.findall(r"changed=(\d+)", done.stdout)),
        "calls": {host: c["module_calls"] for host, c in counted.items()},
        "apt": {host: c.get("apt_calls", 0) for host, c in counted.items()},
    }


def age(client, lab, *argv):
    """tests/bench/age_host.sh on each lab host, as root (through the engine, not the play's SSH)."""
    script = AGE_HOST.read_text()
    for host in lab:
        container = client.containers.get(f"bulwark-{host['name']}")
        code, output = container.exec_run(["sh", "-c", script, "age_host.sh", *argv])
        if code != 0:
            sys.exit(f"cannot age {host['name']}: {output.decode(errors='replace')[-2000:]}")


def hold_dpkg_lock(client, lab, seconds):
    """On each host, a process that holds dpkg's frontend lock for `seconds` (as unattended-upgrades does at
    the start of its run), started just before the play: the run must wait for it, not fail."""
    for host in lab:
        container = client.containers.get(f"bulwark-{host['name']}")
        container.exec_run(["flock", "/var/lib/dpkg/lock-frontend", "sleep", str(seconds)], detach=True)
    time.sleep(0.5)  # the lock is taken before the play's first apt call


def measure(client, count):
    """The runs on `count` fresh hosts, then on the same hosts aged: {run: play()'s figures}."""
    lab = hosts.up(client, count, PROJECT / ".lab", PROJECT / "inventories/lab", log=lambda *_unused: None)
    figures = {"first": play()}
    figures["no-change"] = play()
    figures["check"] = play("--check", "--diff")
    age(client, lab)
    figures["aged"] = play()
    age(client, lab, "due")
    figures["due"] = play()
    age(client, lab, "due")
    hold_dpkg_lock(client, lab, LOCK_HELD)
    figures["locked"] = play()
    return figures


def spread(per_host):
    """'7' when every host has the same figure, '7-9' otherwise."""
    values = sorted(set(per_host.values())) or [0]
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def load():
    return os.getloadavg()[0]


ROWS = [
    ("first run", "first"),
    ("no-change re-run", "no-change"),
    ("check mode (--check --diff)", "check"),
    ("no-change, aged (lists 2 days old, held update)", "aged"),
    ("no-change, aged, last refresh 2 h ago (one due)", "due"),
    (f"the same, dpkg's lock held {LOCK_HELD} s at the start", "locked"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10, help="the fleet's size (1: one host only)")
    args = parser.parse_args()
    client = ensure_engine()
    images.build_all(client)
    sizes = [1] + ([args.hosts] if args.hosts > 1 else [])
    loads, figures = [load()], {}
    for size in sizes:
        figures[size] = measure(client, size)
        loads.append(load())

    averages = ", ".join(f"{x:.1f}" for x in loads)
    print(
        f"\nharden.yml on lab hosts ({os.cpu_count()} cores; load average {averages} before, between, after)"
    )
    print(
        f"{'':50} {'hosts':>5} {'wall':>7} {'CPU/host':>9} {'module calls/host':>18}"
        f" {'apt/host':>9} {'changed':>8}"
    )
    for label, key in ROWS:
        for size in sizes:
            run = figures[size][key]
            print(
                f"{label:50} {size:>5} {run['seconds']:>6.1f}s {run['cpu'] / size:>8.2f}s"
                f" {spread(run['calls']):>18} {spread(run['apt']):>9} {run['changed']:>8}"
            )
    one = figures[1]["no-change"]["seconds"]
    verdict = f"bar: no-change re-run on 1 host <= {BAR_ONE:.0f} s: {'met' if one <= BAR_ONE else 'missed'}"
    if len(sizes) > 1:
        fleet = figures[args.hosts]["no-change"]["seconds"]
        verdict += (
            f"; {args.hosts} hosts <= {BAR_RATIO} x 1 host: {'met' if fleet <= BAR_RATIO * one else 'missed'}"
        )
    print(verdict)
    for size in sizes:
        if any(figures[size][key]["changed"] for key in ("no-change", "aged", "due", "locked")):
            sys.exit("a no-change re-run reported changes")
        if figures[size]["check"]["changed"]:
            sys.exit("check mode predicted changes on hosts a no-change run had just left alone")


if __name__ == "__main__":
    main()
