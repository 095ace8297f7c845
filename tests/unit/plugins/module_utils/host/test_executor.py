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
