"""The executor: check mode touches nothing; a failure at each operation runs exactly the inverses of the
operations applied before it, newest first, and says so; a Refused fails with "Nothing was applied" once."""

import os

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import executor, plan
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError


class FakeRunner:
    def __init__(self, fail_on=()):
        self.calls = []
        self.fail_on = set(fail_on)

    def run(self, argv, data=None, check=False, what=None, env=None):
        self.calls.append(list(argv))
        if argv[0] in self.fail_on:
            if check:
                raise HostError(f"{what or argv[0]} failed (rc=1)")
            return 1, "", "no"
        return 0, "", ""


def three_ops(tmp_path):
    a, b = tmp_path / "a.conf", tmp_path / "b.conf"
    a.write_text("old a\n")
    os.chmod(a, 0o640)
    ops = [
        plan.replace(str(a), "new a\n", plan.Current("old a\n", 0o640), what="write a.conf"),
        plan.replace(str(b), "new b\n", None, what="write b.conf"),
        plan.Command(
            ("reload-it",), what="reload the service", inverse=plan.Command(("undo-it",), what="undo")
        ),
    ]
    return a, b, plan.Plan().add(*ops)


def test_check_mode_reports_the_words_and_touches_nothing(tmp_path):
    a, b, p = three_ops(tmp_path)
    runner = FakeRunner()
    assert executor.Executor(runner, check_mode=True).run(p) == [
        "write a.conf", "write b.conf", "reload the service",
    ]  # fmt: skip
    assert a.read_text() == "old a\n" and not b.exists() and runner.calls == []


def test_a_plan_applies_in_order(tmp_path):
    a, b, p = three_ops(tmp_path)
    runner = FakeRunner()
    assert executor.Executor(runner).run(p) == p.words()
    assert a.read_text() == "new a\n" and oct(a.stat().st_mode & 0o777) == "0o644"
    assert b.read_text() == "new b\n" and runner.calls == [["reload-it"]]


@pytest.mark.parametrize("failing", [0, 1, 2])
def test_a_failure_runs_exactly_the_inverses_of_what_was_applied(tmp_path, failing):
    a, b, p = three_ops(tmp_path)
    if failing == 0:
        (tmp_path / "a.conf").unlink()
        (tmp_path / "a.conf").symlink_to("/etc/passwd")  # files.write refuses a link
    if failing == 1:
        b.mkdir()  # a directory where the file goes: the rename fails
    runner = FakeRunner(fail_on={"reload-it"} if failing == 2 else ())
    with pytest.raises(executor.PlanFailed) as caught:
        executor.Executor(runner).run(p)
    exc = caught.value
    assert exc.applied == p.words()[:failing]
    assert exc.changed == (failing > 0)
    text = str(exc)
    assert text.startswith(f"{p.words()[failing]} failed: ")
    if failing == 0:
        assert text.endswith("Nothing was applied") and exc.restored == []
        assert os.path.islink(a)
    else:
        assert exc.restored == [f"remove {b}", f"put back {a}"][2 - failing :]
        assert a.read_text() == "old a\n" and oct(a.stat().st_mode & 0o777) == "0o640"
        assert "Put back:" in text
    assert runner.calls == ([["reload-it"]] if failing == 2 else [])


def test_an_operation_without_an_inverse_is_named_as_not_put_back(tmp_path):
    p = plan.Plan().add(
        plan.Command(("first",), what="first step"), plan.Command(("second",), what="second step")
    )
    with pytest.raises(executor.PlanFailed) as caught:
        executor.Executor(FakeRunner(fail_on={"second"})).run(p)
    assert caught.value.unrestored == ["first step"]
    assert "NOT put back: first step." in str(caught.value)


def test_verify_runs_on_the_temporary_file_and_a_refusal_leaves_the_file(tmp_path):
    target = tmp_path / "sudoers"
    target.write_text("old\n")
    p = plan.Plan().add(
        plan.replace(
            str(target),
            "bad\n",
            plan.Current("old\n", 0o440),
            what="write sudoers",
            verify=("visudo-c", "{}"),
        )
    )
    runner = FakeRunner(fail_on={"visudo-c"})
    with pytest.raises(executor.PlanFailed):
        executor.Executor(runner).run(p)
    assert target.read_text() == "old\n"
    assert runner.calls[0][1].endswith(".sudoers.bulwark-tmp")


def test_fail_says_nothing_was_applied_once():
    class Module:
        def fail_json(self, **kwargs):
            raise SystemExit(kwargs)

    with pytest.raises(SystemExit) as caught:
        executor.fail(Module(), plan.Refused("bad input. Nothing was applied"))
    assert caught.value.args[0] == {"msg": "bad input. Nothing was applied", "changed": False}
    with pytest.raises(SystemExit) as caught:
        executor.fail(Module(), plan.Refused("bad input"))
    assert caught.value.args[0]["msg"] == "bad input. Nothing was applied"


def test_a_plan_takes_only_host_operations():
    with pytest.raises(TypeError):
        plan.Plan().add(("write", "/etc/x"))


# --- commit-confirm: the executor drives the protocol (arm, apply, restore, re-arm) -----------------------

from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm as cc  # noqa: E402


class Log(list):
    """One ordered record of what the runner ran and what the transaction was asked."""


class LoggingRunner(FakeRunner):
    def __init__(self, log, fail_on=()):
        super().__init__(fail_on)
        self.log = log

    def run(self, argv, data=None, check=False, what=None, env=None):
        self.log.append(("run", argv[0]))
        return super().run(argv, data=data, check=check, what=what, env=env)


class FakeTransaction:
    concern = "demo"

    def __init__(self, log, pending=False, arm_error=None, rearm_error=None, restore_error=None):
        self.log, self._pending = log, pending
        self.arm_error, self.rearm_error, self.restore_error = arm_error, rearm_error, restore_error

    def pending(self):
        return self._pending

    def restore_steps(self):
        return [("put back the confirmed demo", ["restore-confirmed"])]

    def arm(self, timeout, steps, apply_seconds=0):
        self.log.append(("arm", timeout + apply_seconds, [what for what, _argv in steps]))
        if self.arm_error:
            raise self.arm_error
        return self._pending

    def rearm(self, timeout, staged=None):
        self.log.append(("rearm", timeout, staged))
        if self.rearm_error:
            raise self.rearm_error

    def restore_now(self):
        self.log.append(("restore_now",))
        if self.restore_error:
            raise self.restore_error
        return cc.ROLLED_BACK


def confirmed_plan(tmp_path):
    return plan.Plan().add(
        plan.Command(("first",), what="first step"),
        plan.Command(("second",), what="second step", inputs=((str(tmp_path / "script"), "2\n"),)),
        plan.Command(("third",), what="third step"),
    )


def demo_confirm(tx, tmp_path, steps=(("put the demo back", ["restore-demo"]),), **kwargs):
    snapshot = tmp_path / "snapshot"
    calls = []

    def prepare():
        calls.append("prepare")
        saved = plan.Write(str(snapshot), "before\n", 0o600, what="save the snapshot",
                           inverse=plan.Remove(str(snapshot), what="remove the snapshot"))  # fmt: skip
        return [saved], list(steps)

    kwargs.setdefault("restored", "The host restored the demo")
    confirm = executor.Confirm(tx, 30, prepare, staged={"files": [], "commands": [["boot"]]}, **kwargs)
    return confirm, snapshot, calls


def test_commit_confirm_arms_from_the_plan_before_the_first_operation_and_rearms_after_the_last(tmp_path):
    log = Log()
    tx = FakeTransaction(log)
    confirm, snapshot, _calls = demo_confirm(tx, tmp_path, apply_seconds=15)
    done = executor.Executor(LoggingRunner(log)).run(confirmed_plan(tmp_path), confirm)
    assert done == ["first step", "second step", "third step"]
    assert log == [
        ("arm", 45, ["put the demo back"]),  # the plan's restore, the apply's time covered
        ("run", "first"), ("run", "second"), ("run", "third"),
        ("rearm", 30, {"files": [], "commands": [["boot"]]}),  # the window counts from the end of the apply
    ]  # fmt: skip
    assert snapshot.read_text() == "before\n"  # what the restore reads, saved before arming
    assert (tmp_path / "script").read_text() == "2\n"  # a command's input, written with it


@pytest.mark.parametrize("failing", ["first", "second", "third"])
def test_commit_confirm_a_failure_at_each_step_restores_now_and_says_what_was_applied(tmp_path, failing):
    log = Log()
    tx = FakeTransaction(log)
    confirm, _snapshot, _calls = demo_confirm(tx, tmp_path)
    with pytest.raises(executor.ConfirmFailed) as caught:
        executor.Executor(LoggingRunner(log, fail_on={failing})).run(confirmed_plan(tmp_path), confirm)
    exc = caught.value
    order = ["first", "second", "third"]
    before = [f"{name} step" for name in order[: order.index(failing)]]
    assert log[-1] == ("restore_now",) and not any(entry[0] == "rearm" for entry in log)
    assert exc.applied == before and exc.changed == bool(before)
    assert exc.restored == ["put the demo back"]
    said = f"Applied before it: {'; '.join(before)}." if before else "Nothing before it was applied."
    assert str(exc) == (
        f"{failing} step failed (rc=1). {said} The host restored the demo: put the demo back."
    )


def test_commit_confirm_a_restore_that_fails_says_so_and_the_change_stays_armed(tmp_path):
    log = Log()
    tx = FakeTransaction(log, restore_error=cc.RestoreFailed("demo: the restore FAILED at step 'x'"))
    confirm, _snapshot, _calls = demo_confirm(tx, tmp_path)
    with pytest.raises(executor.ConfirmFailed) as caught:
        executor.Executor(LoggingRunner(log, fail_on={"second"})).run(confirmed_plan(tmp_path), confirm)
    assert caught.value.restored == [] and caught.value.changed is True
    assert str(caught.value).endswith("Applied before it: first step. demo: the restore FAILED at step 'x'")


def test_commit_confirm_never_arms_a_plan_with_nothing_to_restore(tmp_path):
    log = Log()
    tx = FakeTransaction(log)
    confirm, snapshot, _calls = demo_confirm(tx, tmp_path, steps=())
    with pytest.raises(executor.ConfirmFailed) as caught:
        executor.Executor(LoggingRunner(log)).run(confirmed_plan(tmp_path), confirm)
    assert str(caught.value) == (
        f"could not arm the demo rollback ({cc.NOTHING_TO_RESTORE}): while the host cannot arm the rollback,"
        " no change is applied. Nothing was applied"
    )
    assert log == [] and not snapshot.exists() and caught.value.changed is False


def test_commit_confirm_a_rollback_that_cannot_be_armed_applies_nothing_and_undoes_the_snapshot(tmp_path):
    log = Log()
    tx = FakeTransaction(log, arm_error=HostError("arming the demo rollback timer failed (rc=1)"))
    confirm, snapshot, _calls = demo_confirm(tx, tmp_path)
    with pytest.raises(executor.ConfirmFailed) as caught:
        executor.Executor(LoggingRunner(log)).run(confirmed_plan(tmp_path), confirm)
    assert str(caught.value) == (
        "could not arm the demo rollback (arming the demo rollback timer failed (rc=1)): while the host"
        " cannot arm the rollback, no change is applied. Nothing was applied"
    )
    assert [entry[0] for entry in log] == ["arm"] and not snapshot.exists()


def test_commit_confirm_check_mode_touches_nothing_and_arms_nothing(tmp_path):
    log = Log()
    tx = FakeTransaction(log)
    confirm, snapshot, calls = demo_confirm(tx, tmp_path)
    words = executor.Executor(LoggingRunner(log), check_mode=True).run(confirmed_plan(tmp_path), confirm)
    assert words == ["first step", "second step", "third step"]
    assert log == [] and calls == [] and not snapshot.exists() and not (tmp_path / "script").exists()


def test_commit_confirm_a_pending_change_keeps_its_first_restore_and_gets_a_new_window(tmp_path):
    log = Log()
    tx = FakeTransaction(log, pending=True)
    confirm, snapshot, calls = demo_confirm(tx, tmp_path)
    executor.Executor(LoggingRunner(log)).run(plan.Plan(), confirm)
    assert log == [("arm", 30, []), ("rearm", 30, {"files": [], "commands": [["boot"]]})]
    assert calls == [] and not snapshot.exists()  # the snapshot of the confirmed state is not overwritten


def test_commit_confirm_a_failure_while_pending_names_the_armed_restore(tmp_path):
    log = Log()
    tx = FakeTransaction(log, pending=True)
    confirm, _snapshot, _calls = demo_confirm(tx, tmp_path)
    with pytest.raises(executor.ConfirmFailed) as caught:
        executor.Executor(LoggingRunner(log, fail_on={"first"})).run(confirmed_plan(tmp_path), confirm)
    assert caught.value.changed is True  # the earlier unconfirmed change was live, and is undone
    assert caught.value.restored == ["put back the confirmed demo"]


def test_commit_confirm_nothing_to_apply_and_nothing_pending_arms_nothing(tmp_path):
    log = Log()
    confirm, _snapshot, calls = demo_confirm(FakeTransaction(log), tmp_path)
    assert executor.Executor(LoggingRunner(log)).run(plan.Plan(), confirm) == []
    assert log == [] and calls == []


def test_commit_confirm_an_apply_the_timer_overtook_says_to_raise_the_timeout(tmp_path):
    log = Log()
    tx = FakeTransaction(log, rearm_error=cc.RolledBack("demo: the change was rolled back by the host"))
    confirm, _snapshot, _calls = demo_confirm(tx, tmp_path)
    with pytest.raises(executor.ConfirmFailed) as caught:
        executor.Executor(LoggingRunner(log)).run(confirmed_plan(tmp_path), confirm)
    assert "(the apply took longer than rollback_timeout, 30 s: raise it)" in str(caught.value)
    assert caught.value.changed is True


def test_commit_confirm_the_check_after_the_apply_fails_like_an_operation(tmp_path):
    log = Log()
    tx = FakeTransaction(log)

    def silent():
        raise HostError("the demo did not answer within 10 s")

    confirm, _snapshot, _calls = demo_confirm(tx, tmp_path, check=("waiting for the demo", silent))
    with pytest.raises(executor.ConfirmFailed) as caught:
        executor.Executor(LoggingRunner(log)).run(confirmed_plan(tmp_path), confirm)
    assert str(caught.value).startswith("waiting for the demo failed: the demo did not answer within 10 s.")
    assert log[-1] == ("restore_now",)


def test_fail_reports_a_commit_confirm_failure_as_it_is():
    class Module:
        def fail_json(self, **kwargs):
            raise SystemExit(kwargs)

    exc = executor.ConfirmFailed("x failed. Applied before it: y. The host restored z: w.", True, ["w"])
    with pytest.raises(SystemExit) as caught:
        executor.fail(Module(), exc)
    assert caught.value.args[0] == {
        "msg": "x failed. Applied before it: y. The host restored z: w.", "changed": True, "restored": ["w"],
    }  # fmt: skip
