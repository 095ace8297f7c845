"""Commit-confirm killed and failed at every step: the controller always gets back in.

A host namespace runs a listener on the SSH port and is linked to a controller namespace. The firewall module
applies a policy that admits the controller and the confirmation keeps it (the baseline). Then, for every host
operation N of a change run, and of its confirmation (numbered by a clean run's `ops`), the module is killed
just before N, and separately N is made to fail. Whatever that leaves, the next run applies a change that cuts
the controller off and that the guard cannot see (guard=false), unconfirmed; the controller is cut off while
it is live, the host's rollback timer fires, and the controller connects again. A rollback is never recorded
where nothing was restored, and a change is never live without a timer to undo it.

The cut-off check is a function of what the fault left (the ruleset, the state and boot files, the armed
timers): it runs once for each distinct leftover, and every fault that leaves the same is reported against
that run. Two workers (each a host and a controller, with its own /etc and /var/lib/bulwark in a mount
namespace of each command) share the cases, so the file stays well under two minutes on two cores.
"""

import hashlib
import itertools
import os
import shlex
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import FakeSystemd, Netns, _names, sh

from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm as cc

HOST, CONTROLLER, PORT = "10.231.0.1", "10.231.0.2", 22
MAIN = cc.unit_name("firewall")
STATE = os.path.join(cc.ROOT, "firewall")  # the protocol's directory, as the host sees it
COMMON = {
    "backend": "nftables",
    "docker": "false",
    "ssh_port": PORT,
    "controller_address": CONTROLLER,
    "controller_port": PORT,
    "controller_local_address": HOST,
    "rollback_timeout": 30,
}
BASELINE = {**COMMON, "admin_networks": [f"{CONTROLLER}/32"]}
CHANGE = {**BASELINE, "services": [8080]}  # admits the controller: the change a fault interrupts
# Cuts the controller off by a policy the guard would refuse, so the guard is switched off (clarifications).
CUT_OFF = {**COMMON, "admin_networks": ["192.0.2.0/24"], "guard": False}
CONFIRM = {"concern": "firewall"}
WORKERS = 2
# Markers whose content is only the time they were written: what a fault leaves is the same without it.
_TIMESTAMPED = {cc.ARMED, cc.CONFIRMED, cc.ROLLED_BACK}


class Host:
    """One worker's host: its network namespace, and its own /etc and /var/lib/bulwark bind-mounted in a
    private mount namespace of every command (so that two workers never share the protocol's state)."""

    def __init__(self, ns, etc, var):
        self.ns, self.etc, self.var = ns, str(etc), str(var)

    def argv(self, argv):
        mounts = 'mount --bind "$1" /etc && mount --bind "$2" /var/lib/bulwark && shift 2 && exec "$@"'
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            mounts,
            "sh",
            self.etc,
            self.var,
            *self.ns.argv(argv),
        ]

    def run(self, argv, check=True, **kwargs):
        return sh(self.argv(argv), check=check, **kwargs)

    def ruleset(self):
        return self.run(["nft", "list", "ruleset"]).stdout


class Worker:
    """A host and a controller linked by a veth pair, a listener on the host, and saved states to reset to."""

    def __init__(self, root):
        self.root = root
        etc, var = root / "etc", root / "var"
        shutil.copytree("/etc", etc, symlinks=True)
        var.mkdir()
        self.namespaces = [Netns(f"adv{os.getpid()}-{next(_names)}") for _side in range(2)]
        self.host = Host(self.namespaces[0], etc, var)
        self.controller = self.namespaces[1]
        n = next(_names)
        sh(["ip", "link", "add", f"va{n}", "type", "veth", "peer", "name", f"vb{n}"])
        for ns, end, address in (
            (self.namespaces[0], f"va{n}", HOST),
            (self.controller, f"vb{n}", CONTROLLER),
        ):
            sh(["ip", "link", "set", end, "netns", ns.name])
            ns.run(["ip", "address", "add", f"{address}/24", "dev", end])
            ns.run(["ip", "link", "set", end, "up"])
        self.listener = self.namespaces[0].popen(
            [sys.executable, "-m", "http.server", "--bind", HOST, str(PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _attempt in range(50):
            if self.reachable():
                break
        assert self.reachable(), "the listener must answer before anything is judged"
        self.saved = {}
        self._systemd = itertools.count()

    def reachable(self):
        return self.controller.connects(HOST, PORT, timeout=0.5)

    def systemd(self):
        return FakeSystemd(self.root / f"systemd-{next(self._systemd)}")

    def save(self, name, systemd):
        """Keep the host's state (ruleset, /var/lib/bulwark, boot files, armed timers) as `name`."""
        saved = self.root / f"saved-{name}"
        shutil.rmtree(saved, ignore_errors=True)
        shutil.copytree(self.host.var, saved / "var", symlinks=True)
        shutil.copytree(os.path.join(self.host.etc, "bulwark"), saved / "bulwark", symlinks=True)
        shutil.copy2(os.path.join(self.host.etc, "nftables.conf"), saved / "nftables.conf")
        shutil.copytree(systemd.root / "timers", saved / "timers")
        self.saved[name] = (saved, self.host.ruleset())

    def reset(self, name):
        """The host exactly as saved under `name`; a fresh systemd stand-in with the saved timers."""
        saved, ruleset = self.saved[name]
        self.host.run(["nft", "flush", "ruleset"])
        self.host.run(["nft", "-f", "-"], input=ruleset)
        for target, source in (
            (self.host.var, saved / "var"),
            (f"{self.host.etc}/bulwark", saved / "bulwark"),
        ):
            shutil.rmtree(target)
            shutil.copytree(source, target, symlinks=True)
        shutil.copy2(saved / "nftables.conf", os.path.join(self.host.etc, "nftables.conf"))
        systemd = self.systemd()
        for timer in (saved / "timers").iterdir():
            shutil.copy2(timer, systemd.root / "timers" / timer.name)
        return systemd, ruleset

    def local(self, path):
        """Where the host's /var/lib/bulwark/... or /etc/... is in this worker's copy."""
        for inside, outside in (("/var/lib/bulwark", self.host.var), ("/etc", self.host.etc)):
            if path == inside or path.startswith(inside + "/"):
                return outside + path[len(inside) :]
        raise AssertionError(path)

    def state(self):
        """{name: content} of the protocol's directory."""
        directory = self.local(STATE)
        if not os.path.isdir(directory):
            return {}
        return {
            name: open(os.path.join(directory, name), "rb").read() for name in sorted(os.listdir(directory))
        }

    def leftover(self, systemd):
        """What a fault left, without the times markers carry: the same leftover, the same next run."""
        digest = hashlib.sha256(self.host.ruleset().encode())
        for base in (self.host.var, os.path.join(self.host.etc, "bulwark")):
            for root, _dirs, names in sorted(os.walk(base)):
                for name in sorted(names):
                    path = os.path.join(root, name)
                    content = b"" if name in _TIMESTAMPED else open(path, "rb").read()
                    digest.update(f"{os.path.relpath(path, base)}\0".encode() + content + b"\0")
        digest.update(open(os.path.join(self.host.etc, "nftables.conf"), "rb").read())
        digest.update(repr(sorted(systemd.timers())).encode())
        return digest.hexdigest()

    def close(self):
        self.listener.kill()
        self.listener.wait()
        for ns in self.namespaces:
            ns.remove()


class Lab:
    """The workers, the clean runs' operations, and the outcome of the cut-off check per leftover."""

    def __init__(self, root):
        os.makedirs("/var/lib/bulwark", exist_ok=True)  # where each command mounts its worker's copy
        self.workers = [Worker(root / f"worker-{n}") for n in range(WORKERS)]
        self.ops = {}
        self.persisted = None  # what the confirmation of CHANGE writes to persist_path
        self._outcomes = {}
        self._lock = threading.Lock()
        self._ready = False

    def prepare(self, run_module):
        """Per worker: the baseline (applied, confirmed) and the change pending on top of it; the clean
        runs' operations, numbered as the faults count them."""
        if self._ready:
            return
        for worker in self.workers:
            systemd = worker.systemd()
            env = systemd.env()
            first = run_module("firewall", BASELINE, ns=worker.host, env=env)
            assert first.rc == 0 and first.result["pending"], first
            kept = run_module("commit_confirm", CONFIRM, ns=worker.host, env=env)
            assert kept.rc == 0 and kept.result["confirmed"], kept
            assert worker.reachable()
            worker.save("baseline", systemd)
            change = run_module("firewall", CHANGE, ns=worker.host, env=env)
            assert change.rc == 0 and change.result["pending"], change
            assert set(systemd.timers()) == {MAIN}
            worker.save("pending", systemd)
            confirmed = run_module("commit_confirm", CONFIRM, ns=worker.host, env=env)
            assert confirmed.rc == 0 and confirmed.result["confirmed"], confirmed
            self.ops = {"change": change.ops, "confirm": confirmed.ops}
            self.persisted = open(worker.local("/etc/bulwark/firewall.nft")).read()
        self._ready = True

    def outcome(self, key, check):
        """The cut-off check's verdict for a leftover, run once (by the first case that left it)."""
        with self._lock:
            event = self._outcomes.get(key)
            first = event is None
            if first:
                event = self._outcomes[key] = [threading.Event(), None]
        if first:
            try:
                event[1] = check()
            except Exception as exc:  # the verdict of this leftover, reported with each case
                event[1] = f"{type(exc).__name__}: {exc}"
            event[0].set()
        event[0].wait()
        return event[1], first

    def close(self):
        for worker in self.workers:
            worker.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    made = Lab(tmp_path_factory.mktemp("commit-confirm"))
    yield made
    made.close()


def restore_steps(script):
    """The commands of a restore script's `step` lines (read here, not by the code under test)."""
    return [shlex.split(line)[2:] for line in script.split("\n") if line.startswith("step ")]


def protocol_invariants(worker, systemd, before_ruleset):
    """What must hold after any fault, at any N: a problem found, or None."""
    state = worker.state()
    ruleset = worker.host.ruleset()
    if cc.ARMED in state and not restore_steps(state.get("restore.sh", b"").decode()):
        return "armed with a restore script that restores nothing"
    if cc.ARMED in state and ruleset != before_ruleset and not systemd.timers():
        return "an unconfirmed change is live with no timer to undo it"
    if cc.ROLLED_BACK in state and ruleset != before_ruleset:
        return "rolled-back recorded, and the ruleset is not the one before the change"
    if not set(state) & {cc.ARMED, cc.RESTORING}:
        # a timer left by a confirmation killed before it stopped it: it must find nothing to claim
        for unit in sorted(systemd.timers()):
            systemd.fire(unit, worker.host)
            if worker.state() != state or worker.host.ruleset() != ruleset:
                return (
                    f"the timer {unit} of a change no longer armed changed the host: {sorted(worker.state())}"
                )
    return None


def cut_off_and_back(worker, systemd, run_module, persisted):
    """The next run cuts the controller off, unconfirmed; the timer must let it back in. Returns a
    problem, or None."""
    confirmed_left = cc.CONFIRMED in worker.state()
    cut = run_module("firewall", CUT_OFF, ns=worker.host, env=systemd.env())
    if cut.rc != 0 or not cut.result.get("pending"):
        return f"the cutting change was not applied: {cut!r}"
    if confirmed_left and open(worker.local("/etc/bulwark/firewall.nft")).read() != persisted:
        return "a confirmed change left unpersisted was not persisted by the next run"
    if worker.reachable():
        return "the cutting change did not cut the controller off (the check proves nothing)"
    if set(systemd.timers()) != {MAIN}:
        return f"armed timers after the cutting change: {sorted(systemd.timers())}"
    fired = systemd.fire(MAIN, worker.host)
    if not worker.reachable():
        return f"still cut off after the timer fired (rc={fired.returncode}): {sorted(worker.state())}"
    state = worker.state()
    if cc.ROLLED_BACK not in state or set(state) & {cc.ARMED, cc.RESTORING, cc.RESTORE_FAILED}:
        return f"the timer restored, but the state says {sorted(state)}"
    return None


def fault_case(lab, worker, run_module, phase, fault):
    """One fault: reset, run the faulted module, check the invariants, then the cut-off check for what it
    left. Returns a problem, or None."""
    systemd, before = worker.reset("baseline" if phase == "change" else "pending")
    if phase == "change":
        faulted = run_module("firewall", CHANGE, ns=worker.host, env=systemd.env(), fault=fault)
    else:
        faulted = run_module("commit_confirm", CONFIRM, ns=worker.host, env=systemd.env(), fault=fault)
        before = worker.saved["baseline"][1]  # a rollback now restores the confirmed baseline
    if fault.startswith("kill") and not faulted.killed:
        return f"not killed: {faulted!r}"
    if fault.startswith("fail"):
        if faulted.result is None:
            return f"a failed operation crashed the module: {faulted!r}"
        if phase == "confirm" and faulted.result.get("confirmed"):
            state = worker.state()
            persisted = open(worker.local("/etc/bulwark/firewall.nft")).read()
            if cc.CONFIRMED in state or "staged.json" in state or persisted != lab.persisted:
                return f"reported confirmed, and the persist did not finish: {faulted.result}"
        if faulted.result.get("failed") and not faulted.result.get("msg"):
            return f"failed without saying what: {faulted.result}"
    problem = protocol_invariants(worker, systemd, before)
    if problem:
        return problem
    verdict, _first = lab.outcome(
        worker.leftover(systemd), lambda: cut_off_and_back(worker, systemd, run_module, lab.persisted)
    )
    return verdict


def run_every_fault(lab, run_module, phase, kind):
    lab.prepare(run_module)
    faults = [f"{kind}:{n}" for n in range(1, len(lab.ops[phase]) + 1)]
    assert len(faults) >= (6 if phase == "confirm" else 15), lab.ops[phase]
    names = dict(zip(faults, lab.ops[phase], strict=True))

    def share(worker_index):
        worker = lab.workers[worker_index]
        return [
            (fault, fault_case(lab, worker, run_module, phase, fault))
            for fault in faults[worker_index::WORKERS]
        ]

    with ThreadPoolExecutor(WORKERS) as pool:
        results = [item for share_ in pool.map(share, range(WORKERS)) for item in share_]
    problems = [f"{fault} ({names[fault]}): {problem}" for fault, problem in sorted(results) if problem]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", ["kill", "fail"])
def test_a_change_run_killed_or_failed_at_any_operation_never_strands_the_controller(lab, run_module, kind):
    run_every_fault(lab, run_module, "change", kind)


@pytest.mark.parametrize("kind", ["kill", "fail"])
def test_a_confirmation_killed_or_failed_at_any_operation_never_strands_the_controller(lab, run_module, kind):
    run_every_fault(lab, run_module, "confirm", kind)


def test_a_persist_whose_systemctl_enable_fails_is_named_and_finished_by_the_next_run(lab, run_module):
    """The finding's own case: `systemctl enable` of the boot unit fails during the confirmation."""
    lab.prepare(run_module)
    worker = lab.workers[0]
    systemd, _before = worker.reset("pending")
    systemd.hook("enable", "nftables.service", "echo 'Failed to enable unit' >&2; exit 1")
    answer = run_module("commit_confirm", CONFIRM, ns=worker.host, env=systemd.env())
    assert answer.rc != 0 and answer.result["confirmed"] is False, answer
    assert answer.result["state"] == "persist-failed"
    assert "persisting it FAILED: systemctl enable nftables.service failed" in answer.result["msg"]
    assert "Failed to enable unit" in answer.result["msg"]
    # check mode says what the next run finishes, and touches nothing
    left = worker.state()
    for name, args in (("commit_confirm", CONFIRM), ("firewall", CUT_OFF)):
        predicted = run_module(name, args, ns=worker.host, env=systemd.env(), check_mode=True)
        assert predicted.rc == 0 and predicted.result["changed"] is True, predicted
        touched = [
            op for op in predicted.ops if op.split("\t")[1].split()[0] in ("write", "remove", "rename")
        ]
        assert not [op for op in touched if "/var/lib/bulwark" in op or "/etc/" in op], touched
        acting = ("systemd-run", "systemctl stop", "systemctl enable", "systemctl disable", "/bin/sh")
        assert not [op for op in predicted.ops if any(word in op for word in acting)], predicted.ops
        assert worker.state() == left
    assert "the next run persists it" in str(predicted.result.get("warnings"))
    # still failing: the next change is refused by name, nothing is armed over the leftover
    refused = run_module("firewall", CUT_OFF, ns=worker.host, env=systemd.env())
    assert refused.rc != 0 and refused.result["msg"].endswith("Nothing new was applied"), refused
    assert worker.reachable() and not systemd.timers()
    # enable works again: the next run persists the confirmed change first, then the cut is undone
    os.unlink(systemd.root / "hooks" / "enable-nftables.service")
    assert cut_off_and_back(worker, systemd, run_module, lab.persisted) is None


@pytest.mark.parametrize("cut", ["after-claiming", "after-its-steps"])
def test_a_rollback_killed_midway_is_finished_by_the_next_run(lab, run_module, cut):
    """The timer's restore claimed the change (armed -> restoring) and was killed, before or after its
    steps ran: the next run finishes it before it snapshots anything."""
    lab.prepare(run_module)
    worker = lab.workers[0]
    systemd, _before = worker.reset("pending")
    directory = worker.local(STATE)
    os.rename(os.path.join(directory, cc.ARMED), os.path.join(directory, cc.RESTORING))
    if cut == "after-its-steps":
        for argv in restore_steps(open(os.path.join(directory, "restore.sh")).read()):
            worker.host.run(argv)
    assert cut_off_and_back(worker, systemd, run_module, lab.persisted) is None
    assert worker.host.ruleset() == worker.saved["baseline"][1]


def test_an_armed_rollback_without_a_step_left_by_the_old_code_is_discarded(lab, run_module):
    """What the old code armed over a leftover `confirmed`: a restore.sh with no step. Its timer recorded
    "rolled back" and restored nothing; the next run must not keep it."""
    lab.prepare(run_module)
    worker = lab.workers[0]
    systemd, _before = worker.reset("pending")
    script = (
        f"#!/bin/sh\nset -u\ndir={STATE}\n"
        'mv "$dir/armed" "$dir/restoring" 2>/dev/null || exit 0\n'
        'date -u +%FT%TZ > "$dir/rolled-back.tmp" && mv "$dir/rolled-back.tmp" "$dir/rolled-back"\n'
        'rm -f "$dir/restoring" "$dir/staged.json"\n'
    )
    with open(os.path.join(worker.local(STATE), "restore.sh"), "w") as handle:
        handle.write(script)
    assert cut_off_and_back(worker, systemd, run_module, lab.persisted) is None
