"""A member that leaves the mesh is taken out by the names it recorded (real wg-quick and wireguard-go).

The module, configuring a member, records what it set up (interface, key directory, wg-quick file) in a
local fact; a host outside the group has lost the group's variables, so the role takes it out by that record
(state=absent with the recorded names): unit stopped and disabled, interface gone, its wg-quick file, peer
registry, preshared keys, forwarding drop-in and Docker holes removed, its key kept (or removed on request).
Check mode says all of that and changes nothing; a second run changes nothing; a host that rejoins works.
systemctl is the suite's stand-in, its hooks driving the real `wg-quick` in a private network namespace.
"""

import json
import os
import stat

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import leave

KEY_B = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
PSK = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
IFACE = "wgleave0"
UNIT = f"wg-quick@{IFACE}.service"
KEY_DIR = "/etc/bulwark/mesh-keys"
CONF = f"/etc/wireguard/{IFACE}.conf"
FORWARDING = "/etc/sysctl.d/60-bulwark-overlay.conf"
# What the units do under systemd, for the suite's systemctl: wg-quick, and "enabled" as a flag file.
WG_QUICK = "env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wg-quick"


@pytest.fixture
def host(netns, private_path, fake_systemd):
    for path in ("/etc/wireguard", "/etc/bulwark", "/etc/ansible", "/run/wireguard"):
        private_path(path, copy=False)
    private_path("/etc/sysctl.d")
    ns = netns()
    flag = fake_systemd.root / "enabled"
    fake_systemd.hook("restart", UNIT, f"{WG_QUICK} down {IFACE} 2>/dev/null; exec {WG_QUICK} up {IFACE}")
    fake_systemd.hook("is-active", UNIT, f"exec ip link show dev {IFACE} >/dev/null 2>&1")
    fake_systemd.hook("is-enabled", UNIT, f"exec test -e {flag}")
    fake_systemd.hook("enable", UNIT, f"exec touch {flag}")
    fake_systemd.hook(
        "disable",
        UNIT,
        f'rm -f {flag}; case " $* " in *" --now "*) exec {WG_QUICK} down {IFACE};; esac',
    )
    yield ns
    ns.run(["ip", "link", "del", IFACE], check=False)  # wireguard-go ends with its interface


def join(run_module, ns, env, public):
    """state=present as a hub (b, its spoke, behind NAT): the file, the preshared key, forwarding."""
    return run_module(
        "overlay",
        {
            "state": "present",
            "name": "a",
            "members": [
                {"name": "a", "endpoint": "192.0.2.1", "public_key": public},
                {"name": "b", "endpoint": "", "public_key": KEY_B},
            ],
            "cidr": "10.99.0.0/24",
            "interface": IFACE,
            "key_dir": KEY_DIR,
            "preshared_keys": True,
            "preshared_key_values": {"b": PSK},
            "handshake_timeout": 1,
        },
        ns=ns,
        env=env,
    )


def leave_by_record(run_module, ns, env, *, check_mode=False, keep_key=True, fault=None):
    """state=absent as the role calls it for a host outside the group: the names from the record only."""
    recorded = (
        json.loads(open(leave.FACT_PATH, encoding="utf-8").read()) if os.path.exists(leave.FACT_PATH) else {}
    )
    args = {
        "state": "absent",
        "keep_key": keep_key,
        **{k: recorded[k] for k in ("interface", "key_dir") if k in recorded},
    }
    return run_module("overlay", args, ns=ns, env=env, check_mode=check_mode, fault=fault)


def traces():
    return {
        path: os.path.exists(path)
        for path in (CONF, f"{KEY_DIR}/peers.json", f"{KEY_DIR}/psk/b.psk", FORWARDING, leave.FACT_PATH)
    }


def changes(ops):
    """The operations of a run that change the host (reads and probes left out)."""
    return [
        op
        for op in ops
        if op.split("\t")[1].startswith(
            ("write", "remove", "private_dir", "set_attributes", "directory", "run systemctl disable",
             "run systemctl restart", "run ip link del", "run iptables -D", "run wg syncconf")
        )
    ]  # fmt: skip


def test_a_member_that_leaves_is_taken_out_by_what_it_recorded(host, run_module, fake_systemd):
    ns, env = host, fake_systemd.env()
    key = run_module("overlay", {"state": "key", "key_dir": KEY_DIR}, ns=ns, env=env)
    assert key.rc == 0, key
    public = key.result["public_key"]
    joined = join(run_module, ns, env, public)
    assert joined.rc == 0 and joined.result["changed"], joined
    # The record: what it configured, no secret, readable by the unprivileged fact gathering, not executable.
    info = os.stat(leave.FACT_PATH)
    assert stat.S_IMODE(info.st_mode) == 0o644 and info.st_uid == 0
    assert stat.S_IMODE(os.stat(os.path.dirname(leave.FACT_PATH)).st_mode) == 0o755
    assert json.loads(open(leave.FACT_PATH, encoding="utf-8").read()) == {
        "interface": IFACE,
        "key_dir": KEY_DIR,
        "config": CONF,
    }
    assert all(traces().values()), traces()
    assert ns.run(["ip", "link", "show", "dev", IFACE], check=False).returncode == 0
    # A hole Docker's chain still holds for the interface (as a sync opens them, outside the file's hooks),
    # and one that is not the overlay's.
    ns.run(["iptables", "-N", "DOCKER-USER"], check=False)
    ns.run(["iptables", "-A", "DOCKER-USER", "-i", IFACE, "-o", IFACE, "-j", "ACCEPT"])
    ns.run(["iptables", "-A", "DOCKER-USER", "-i", "eth9", "-j", "ACCEPT"])

    predicted = leave_by_record(run_module, ns, env, check_mode=True)
    assert predicted.rc == 0 and predicted.result["changed"], predicted
    reasons = predicted.result["reasons"]
    assert f"{UNIT} stopped and disabled" in reasons
    assert f"interface {IFACE} removed" in reasons
    assert f"Docker's DOCKER-USER no longer admits -i {IFACE} -o {IFACE}" in reasons
    for path in (CONF, f"{KEY_DIR}/peers.json", f"{KEY_DIR}/psk/b.psk", FORWARDING, leave.FACT_PATH):
        assert any(r.startswith(f"{path} removed") for r in reasons), (path, reasons)
    assert not any(r.startswith(f"{KEY_DIR}/private.key ") for r in reasons)
    assert predicted.result["diff"]["before"].startswith("# Managed by bulwark.hardening")
    assert changes(predicted.ops) == []
    assert all(traces().values())

    done = leave_by_record(run_module, ns, env)
    assert done.rc == 0 and done.result["changed"], done
    assert ["systemctl", "disable", "--now", UNIT] in fake_systemd.calls()
    assert ns.run(["ip", "link", "show", "dev", IFACE], check=False).returncode != 0
    assert not any(traces().values()), traces()
    rules = ns.run(["iptables", "-S", "DOCKER-USER"]).stdout
    assert f"-i {IFACE}" not in rules and "-i eth9 -j ACCEPT" in rules
    assert os.path.exists(f"{KEY_DIR}/private.key")  # kept by default, for a host that rejoins
    assert done.result["public_key"] == public

    # Nothing is left to take out: the role no longer calls the module (no record), and a call with the
    # same names changes nothing.
    again = run_module("overlay", {"state": "absent", "interface": IFACE, "key_dir": KEY_DIR}, ns=ns, env=env)
    assert again.rc == 0 and not again.result["changed"], again
    assert changes(again.ops) == []

    # It rejoins with the same key.
    back = join(run_module, ns, env, public)
    assert back.rc == 0 and back.result["changed"], back
    assert ns.run(["wg", "show", IFACE, "public-key"]).stdout.strip() == public
    assert all(traces().values())


def test_a_leaver_asked_not_to_keep_its_key_removes_it(host, run_module, fake_systemd):
    ns, env = host, fake_systemd.env()
    key = run_module("overlay", {"state": "key", "key_dir": KEY_DIR, "rotate": False}, ns=ns, env=env)
    assert join(run_module, ns, env, key.result["public_key"]).rc == 0
    staged = run_module("overlay", {"state": "key", "key_dir": KEY_DIR, "rotate": True}, ns=ns, env=env)
    assert staged.result["next_public_key"], staged
    done = leave_by_record(run_module, ns, env, keep_key=False)
    assert done.rc == 0 and done.result["changed"], done
    assert not os.path.exists(f"{KEY_DIR}/private.key")
    assert not os.path.exists(f"{KEY_DIR}/private.key.next")
    assert done.result["public_key"] is None
    assert not any(traces().values()), traces()


def test_a_leave_killed_at_a_step_is_finished_by_the_next_run(host, run_module, fake_systemd):
    """The record goes last: a run killed before any of its changes leaves the names for the next one."""
    ns, env = host, fake_systemd.env()
    key = run_module("overlay", {"state": "key", "key_dir": KEY_DIR}, ns=ns, env=env)
    assert join(run_module, ns, env, key.result["public_key"]).rc == 0
    steps = [
        int(op.split("\t")[0]) for op in changes(leave_by_record(run_module, ns, env, check_mode=False).ops)
    ]
    # The unit's stop (the first step) and the record's removal (the last).
    for step in (steps[0], steps[-1]):
        assert join(run_module, ns, env, key.result["public_key"]).rc == 0
        killed = leave_by_record(run_module, ns, env, fault=f"kill:{step}")
        assert killed.rc != 0 and os.path.exists(leave.FACT_PATH), (step, killed)
        finished = leave_by_record(run_module, ns, env)
        assert finished.rc == 0 and finished.result["changed"], (step, finished)
        assert not any(traces().values()), (step, traces())
        assert ns.run(["ip", "link", "show", "dev", IFACE], check=False).returncode != 0
