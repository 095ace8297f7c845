"""Firewall benchmark: a 10,000-entry allowlist on a real lab host (nftables backend).

Prints: the time of the first apply, of a no-change re-run (whole Ansible task, and nft alone), and the
number of rules a packet traverses. Starts its own lab host (fw-bench, on the firewall scenario's
network 172.30.2.0/24), drives it with the docker connection, removes it afterwards.
"""

import argparse
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / ".collections"))

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import model, nftables  # noqa: E402

NAME = "fw-bench"
NETWORK = "bulwark-firewall"
SUBNET = "172.30.2.0/24"
ADDRESS = "172.30.2.20"
BIN = PROJECT / ".venv" / "bin"


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)


def allowlist(size):
    """size distinct, non-adjacent entries: /32s and /24s spread over 10.0.0.0/8 and some IPv6."""
    out = []
    for i in range(size):
        if i % 10 == 0:
            out.append(f"2001:db8:{i:x}::/48")
        elif i % 3 == 0:
            out.append(str(ipaddress.ip_network(f"10.{(i >> 8) & 255}.{i & 255}.0/24")))
        else:
            out.append(f"11.{(i >> 8) & 255}.{i & 255}.{(i * 7) % 254 + 1}")
    return out


def start(image):
    created_network = False
    if run(["docker", "network", "inspect", NETWORK]).returncode != 0:
        r = run(["docker", "network", "create", "--subnet", SUBNET, "--gateway", "172.30.2.1", NETWORK])
        if r.returncode != 0:
            sys.exit(f"cannot create network {NETWORK}: {r.stderr}")
        created_network = True
    run(["docker", "rm", "-f", NAME])
    argv = ["docker", "run", "-d", "--name", NAME, "--hostname", NAME]
    argv += ["--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "--cap-add", "SYS_ADMIN"]
    argv += [
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--cgroupns=host",
    ]
    argv += ["-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock"]
    argv += ["--tmpfs", "/tmp", "--network", NETWORK, "--ip", ADDRESS, image, "/sbin/init"]  # noqa: S108
    r = run(argv)
    if r.returncode != 0:
        sys.exit(f"cannot start {NAME}: {r.stderr}")
    for _unused in range(60):
        state = run(["docker", "exec", NAME, "systemctl", "is-system-running"]).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    r = run(
        ["docker", "exec", NAME, "sh", "-c",
         "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
         "apt-get install -y -qq --no-install-recommends nftables"]
    )  # fmt: skip
    if r.returncode != 0:
        sys.exit(f"cannot install nftables on {NAME}: {r.stderr[-2000:]}")
    return created_network


def stop(created_network):
    run(["docker", "rm", "-f", NAME])
    if created_network:
        run(["docker", "network", "rm", NETWORK])


def apply(options, workdir):
    """One run of the firewall module, confirmed in the same task; returns (seconds, result)."""
    if options is None:
        task = {"name": "baseline", "ansible.builtin.ping": {}, "register": "fw"}
    else:
        task = {"name": "firewall", "bulwark.hardening.firewall": options, "register": "fw"}
    save = {
        "name": "result",
        "ansible.builtin.copy": {"content": "{{ fw | to_json }}", "dest": str(workdir / "result.json")},
        "delegate_to": "localhost",
    }
    play = [{"name": "bench", "hosts": "all", "gather_facts": False, "tasks": [task, save]}]
    (workdir / "play.json").write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".collections"))  # fmt: skip
    started = time.monotonic()
    r = run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            f"{NAME},",
            "-c",
            "community.docker.docker",
            str(workdir / "play.json"),
        ],
        env=env,
        cwd=str(PROJECT),
    )
    elapsed = time.monotonic() - started
    if r.returncode != 0:
        sys.exit(f"the firewall run failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return elapsed, json.loads((workdir / "result.json").read_text())


def traversal(policy):
    """Rules evaluated in the input chain for (a) a new connection from an allowlisted source to the
    restricted port, (b) a packet the default policy drops, (c) a packet of an established flow."""
    chain = [ln for ln in nftables.lines(policy) if ln.chain == "input"]
    allowed = next(i for i, ln in enumerate(chain) if "@bench_v4" in ln.text) + 1
    return allowed, len(chain), 2


def main():
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--image", default="bulwark-lab/debian:bookworm")
    parser.add_argument("--keep", action="store_true", help="leave the bench host running")
    args = parser.parse_args()

    entries = allowlist(args.size)
    options = {
        "admin_networks": ["172.30.2.1/32"],
        "sets": {"bench": entries},
        "rules": [{"port": 443, "sources": ["@bench"], "comment": "bench allowlist"}],
        "guard": False,
        "reconnect_and_confirm": True,
    }
    policy = model.normalise(
        {k: v for k, v in options.items() if k not in ("guard", "reconnect_and_confirm")}
    )
    created = start(args.image)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            baseline, _unused = apply(None, workdir)
            first, r1 = apply(options, workdir)
            second, r2 = apply(options, workdir)
            if r2.get("changed"):
                sys.exit("the no-change re-run reported a change: idempotence is broken")
            listed = run(
                [
                    "docker",
                    "exec",
                    NAME,
                    "sh",
                    "-c",
                    "nft list set inet bulwark bench_v4 | grep -o ',' | wc -l",
                ]
            )
            t0 = time.monotonic()
            run(["docker", "exec", NAME, "nft", "-j", "list", "ruleset"])
            read_s = time.monotonic() - t0
    finally:
        if not args.keep:
            stop(created)
    allowed, dropped, established = traversal(policy)
    nft_first = r1.get("apply_seconds", 0)
    elements = int(listed.stdout.strip() or 0) + 1
    print(f"firewall benchmark: {args.size} allowlist entries (nftables, {args.image}, docker connection)")
    print(f"  first apply:        {first:6.2f} s  (whole Ansible run; nft -f alone: {nft_first:.3f} s)")
    print(f"  no-change re-run:   {second:6.2f} s  (changed={r2.get('changed')}; no nft -f runs)")
    print(f"  baseline, the same play with ansible.builtin.ping instead: {baseline:.2f} s")
    print(f"  reading the ruleset (nft -j list ruleset): {read_s:.3f} s")
    print(f"  IPv4 set elements loaded: {elements} in bench_v4 (IPv6 ones in bench_v6)")
    print(f"  rules a new connection from an allowlisted source to 443 traverses: {allowed} (one set lookup)")
    print(f"  rules a packet dropped by the default policy traverses:            {dropped}")
    print(f"  rules a packet of an established flow traverses:                   {established}")


if __name__ == "__main__":
    main()
