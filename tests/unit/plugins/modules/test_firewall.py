"""The firewall module's commit-confirm sequence, with the host faked: arm before apply, a failed arm
applies nothing, a failed step is restored and says what was applied, a re-run while armed is pending."""

import json
import os

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import backends, spec
from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm as cc
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.modules import firewall


class Exit(Exception):
    def __init__(self, failed, kw):
        super().__init__(kw.get("msg"))
        self.failed = failed
        self.kw = kw


class FakeModule:
    def __init__(self, tmp_path, results):
        self.params = {k: v.get("default") for k, v in spec.ARGUMENT_SPEC.items()}
        self.params.update(controller_address="172.30.2.1", controller_port=22, state_dir=str(tmp_path))
        self.params.update(admin_networks=["172.30.2.1/32"])
        self.check_mode = False
        self.tmpdir = str(tmp_path)
        self.results = results  # argv[0] -> rc
        self.ran = []
        self.read = {}  # path -> its content when a command that names it ran (a check's candidate)
        self.warnings = []

    def run_command(self, argv, **_kw):
        self.ran.append(list(argv))
        for word in argv:
            if word.startswith(self.tmpdir) and os.path.isfile(word):
                self.read[word] = open(word).read()
        return self.results.get(argv[0], 0), "", f"{argv[0]} said no" if self.results.get(argv[0]) else ""

    def get_bin_path(self, name, opt_dirs=None):
        return f"/usr/sbin/{name}"

    def fail_json(self, **kw):
        raise Exit(True, kw)

    def exit_json(self, **kw):
        raise Exit(False, kw)

    def warn(self, text):
        self.warnings.append(text)


class FakeTransaction:
    concern = "firewall"

    def __init__(self, pending=False, arm_error=None):
        self.calls = []
        self._pending = pending
        self.arm_error = arm_error

    def settle(self):
        return cc.Settled([], None, False)

    predict = settle

    def state(self):
        return "none", ""

    def pending(self):
        return self._pending

    def restore_steps(self):
        return [("put the last confirmed table back", ["/usr/sbin/nft", "-f", "confirmed"])]

    def arm(self, timeout, restore, apply_seconds=0):
        applied = [argv for argv in self.module.ran if argv[0] in ("/usr/sbin/first", "/usr/sbin/second")]
        self.calls.append(("arm", timeout + apply_seconds, [w for w, _a in restore], applied))
        if self.arm_error:
            raise self.arm_error
        return self._pending

    def rearm(self, timeout, staged=None):
        self.calls.append(("rearm", timeout, staged))

    def restore_now(self):
        self.calls.append(("restore_now",))


class FakeBackend(backends.Backend):
    name = "nftables"
    boot_unit = "nftables.service"

    def __init__(self, tmp_path, changed=True):
        self.tmp_path = tmp_path
        self.changed = changed

    def plan(self, policy, opts):
        plan = backends.Plan(self.name)
        plan.changed = self.changed
        plan.steps = [
            backends.Step("first step", ["/usr/sbin/first"], str(self.tmp_path / "one"), "1\n"),
            backends.Step("second step", ["/usr/sbin/second"], None, None),
        ]
        plan.boot = {"files": [[str(self.tmp_path / "boot"), "boot\n", 0o600]], "commands": [["true"]]}
        candidate = str(self.tmp_path / "state" / "candidate.nft")
        plan.checks = [
            backends.Step("nft -c", ["/usr/sbin/nft", "-c", "-f", candidate], candidate, "table\n")
        ]
        return plan

    def snapshot(self, plan, opts):
        plan.snapshot = {str(self.tmp_path / "snap"): "before\n"}
        plan.restore = [("put the table back", ["/usr/sbin/nft", "-f", str(self.tmp_path / "snap")])]

    def boot_enabled(self):
        return True


def run(tmp_path, results=None, transaction=None, backend=None, check_mode=False):
    module = FakeModule(tmp_path, results or {})
    module.check_mode = check_mode
    fw = firewall.FirewallRun(module)
    fw.transaction = transaction or FakeTransaction()
    fw.transaction.module = module
    fw.backend = backend or FakeBackend(tmp_path)
    with pytest.raises(Exit) as exc:
        fw.run()
    return exc.value, module, fw.transaction


def test_the_rollback_is_armed_before_the_first_step_and_rearmed_after_the_last(tmp_path):
    out, module, tx = run(tmp_path)
    assert not out.failed and out.kw["changed"] and out.kw["pending"]
    assert [c[0] for c in tx.calls] == ["arm", "rearm"]
    assert tx.calls[0][2] == ["put the table back"]
    assert tx.calls[0][3] == []  # no step had run when the rollback was armed
    assert (tmp_path / "snap").read_text() == "before\n"  # the restore's input is on disk before arming
    assert ["/usr/sbin/first"] in module.ran and ["/usr/sbin/second"] in module.ran
    assert not (tmp_path / "boot").exists()  # persisted by the confirmation only
    assert tx.calls[1][2] == {"files": [[str(tmp_path / "boot"), "boot\n", 0o600]], "commands": [["true"]]}


def test_a_rollback_that_cannot_be_armed_applies_nothing_and_says_so(tmp_path):
    out, module, _tx = run(tmp_path, transaction=FakeTransaction(arm_error=HostError("systemd-run failed")))
    assert out.failed and out.kw["changed"] is False
    assert out.kw["msg"] == (
        "could not arm the firewall rollback (systemd-run failed): while the host cannot arm the rollback, no"
        " change is applied. Nothing was applied"
    )
    assert ["/usr/sbin/first"] not in module.ran
    assert not (tmp_path / "snap").exists()  # nothing left behind


def test_a_failed_step_is_restored_and_the_message_says_what_was_applied(tmp_path):
    out, _module, tx = run(tmp_path, results={"/usr/sbin/second": 1})
    assert out.failed and out.kw["changed"] is True
    assert out.kw["msg"] == (
        "second step failed (rc=1): /usr/sbin/second said no. Applied before it: first step. "
        "The host restored the previous firewall: put the table back."
    )
    assert [c[0] for c in tx.calls] == ["arm", "restore_now"]


def test_a_first_step_that_fails_changed_nothing(tmp_path):
    out, _module, _tx = run(tmp_path, results={"/usr/sbin/first": 1})
    assert out.failed and out.kw["changed"] is False
    assert (
        "first step failed (rc=1): /usr/sbin/first said no. Nothing before it was applied." in out.kw["msg"]
    )


def test_a_rerun_while_armed_is_pending_again_and_keeps_the_first_restore(tmp_path):
    out, module, tx = run(
        tmp_path, transaction=FakeTransaction(pending=True), backend=FakeBackend(tmp_path, False)
    )
    assert not out.failed and out.kw["changed"] is True and out.kw["pending"] is True
    assert [c[0] for c in tx.calls] == ["arm", "rearm"]
    assert tx.calls[0][2] == []  # the armed restore (the last confirmed state) is kept
    assert ["/usr/sbin/first"] not in module.ran  # nothing to apply: the live firewall is the policy
    assert not (tmp_path / "snap").exists()  # and the snapshot of the confirmed state is not overwritten


def test_no_change_and_nothing_armed_is_ok(tmp_path):
    backend = FakeBackend(tmp_path, False)
    (tmp_path / "boot").write_text("boot\n")
    (tmp_path / "boot").chmod(0o600)
    out, _module, tx = run(tmp_path, backend=backend)
    assert not out.failed and out.kw["changed"] is False and out.kw["pending"] is False
    assert tx.calls == []


def test_check_mode_validates_the_candidate_in_a_private_temporary_copy_and_applies_nothing(tmp_path):
    out, module, tx = run(tmp_path, check_mode=True)
    assert not out.failed and out.kw["changed"] is True and out.kw["pending"] is False
    checked = module.ran[-1]
    assert checked[:3] == ["/usr/sbin/nft", "-c", "-f"] and os.path.basename(checked[3]) == "candidate.nft"
    assert os.path.dirname(os.path.dirname(checked[3])) == str(tmp_path)  # a sandbox in Ansible's tmpdir
    assert module.read[checked[3]] == "table\n"  # the candidate, written before nft read it
    assert not os.path.exists(checked[3])  # and the sandbox removed afterwards
    assert not (tmp_path / "state").exists()  # never where the real run keeps its candidate
    assert tx.calls == [] and ["/usr/sbin/first"] not in module.ran


def test_check_mode_fails_when_nft_refuses_the_candidate(tmp_path):
    out, _module, _tx = run(tmp_path, results={"/usr/sbin/nft": 1}, check_mode=True)
    assert out.failed
    assert out.kw["msg"] == "nft -c refused the candidate: /usr/sbin/nft said no. Nothing was applied"


# --- what an interrupted run left: the real protocol, with the host's commands faked ------------------


def leftover(tmp_path, marker, staged=True):
    """A real Transaction whose state is what a killed or failed confirmation left."""
    root = tmp_path / "cc"
    directory = root / "firewall"
    directory.mkdir(parents=True)
    (directory / "restore.sh").write_text(
        cc.render_restore(str(directory), [("the first change's restore", ["/usr/sbin/nft", "-f", "x"])])
    )
    (directory / marker).write_text("2026-01-01T00:00:00Z\n")
    if staged:
        boot = [[str(tmp_path / "confirmed-boot"), "confirmed\n", 0o600]]
        (directory / "staged.json").write_text(
            json.dumps({"files": boot, "commands": [["systemctl", "enable", "nftables.service"]]})
        )
    return root


def real_run(tmp_path, root, results=None, check_mode=False):
    module = FakeModule(tmp_path, results or {})
    module.check_mode = check_mode
    fw = firewall.FirewallRun(module)
    fw.transaction = cc.Transaction(fw.runner, "firewall", root=str(root))
    fw.backend = FakeBackend(tmp_path)
    with pytest.raises(Exit) as exc:
        fw.run()
    return exc.value, module, root / "firewall"


def test_a_leftover_confirmation_is_persisted_then_the_change_snapshotted_and_armed_with_its_steps(tmp_path):
    """The finding: `confirmed` left by a killed or failed persist made the next run skip the snapshot and
    arm a rollback with no step, which the timer "performed" by restoring nothing."""
    out, module, directory = real_run(tmp_path, leftover(tmp_path, "confirmed"))
    assert not out.failed and out.kw["pending"] is True
    assert (tmp_path / "confirmed-boot").read_text() == "confirmed\n"  # the interrupted persist, finished
    assert ["systemctl", "enable", "nftables.service"] in module.ran
    assert any("was persisted now" in w for w in module.warnings)
    assert (tmp_path / "snap").read_text() == "before\n"  # snapshotted anew
    steps = cc.parse_restore(str(directory), (directory / "restore.sh").read_text())
    assert steps == [("put the table back", ["/usr/sbin/nft", "-f", str(tmp_path / "snap")])]
    assert (directory / "armed").exists() and not (directory / "confirmed").exists()


def test_a_leftover_confirmation_whose_persist_fails_again_is_named_and_nothing_new_is_applied(tmp_path):
    out, module, directory = real_run(tmp_path, leftover(tmp_path, "confirmed"), results={"systemctl": 1})
    assert out.failed and out.kw["changed"] is True
    assert "persisting it FAILED: systemctl enable nftables.service failed" in out.kw["msg"]
    assert out.kw["msg"].endswith("Nothing new was applied")
    assert ["/usr/sbin/first"] not in module.ran and not (tmp_path / "snap").exists()
    assert (directory / "confirmed").exists() and (directory / "staged.json").exists()


def test_an_armed_change_whose_restore_has_no_step_is_discarded_and_snapshotted_anew(tmp_path):
    root = leftover(tmp_path, "armed")
    (root / "firewall" / "restore.sh").write_text("#!/bin/sh\nmv armed restoring || exit 0\n")
    out, module, directory = real_run(tmp_path, root)
    assert not out.failed and out.kw["pending"] is True
    assert any("could undo nothing" in w for w in module.warnings)
    assert (
        cc.parse_restore(str(directory), (directory / "restore.sh").read_text())[0][0] == "put the table back"
    )


@pytest.mark.parametrize("marker", ["confirmed", "armed-without-restore"])
def test_check_mode_predicts_a_leftover_and_touches_nothing(tmp_path, marker):
    root = leftover(tmp_path, marker.split("-")[0])
    if marker == "armed-without-restore":
        (root / "firewall" / "restore.sh").unlink()
    before = sorted((p.name, p.read_bytes()) for p in (root / "firewall").iterdir())
    out, module, directory = real_run(tmp_path, root, check_mode=True)
    assert not out.failed and out.kw["changed"] is True
    assert module.warnings
    assert sorted((p.name, p.read_bytes()) for p in directory.iterdir()) == before
    assert not any(argv[0] in ("systemctl", "systemd-run", "/bin/sh") for argv in module.ran)
    assert not (tmp_path / "confirmed-boot").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("persist_path", '/etc/bulwark/fw.nft"\ninclude "/tmp/evil.nft'),
        ("persist_path", "/etc/bulwark/../../tmp/fw.nft"),
        ("state_dir", "/var/lib/bulwark;touch /tmp/x"),
    ],
)
def test_a_path_that_is_not_plain_is_refused_before_anything_runs(tmp_path, option, value):
    module = FakeModule(tmp_path, {})
    module.params[option] = value
    fw = firewall.FirewallRun(module)
    fw.transaction = FakeTransaction()
    fw.backend = FakeBackend(tmp_path)
    with pytest.raises(Exit) as exc:
        fw.run()
    assert exc.value.failed and exc.value.kw["msg"].startswith(f"{option}: ")
    assert exc.value.kw["msg"].endswith("Nothing was applied")
    assert module.ran == [] and fw.transaction.calls == []
