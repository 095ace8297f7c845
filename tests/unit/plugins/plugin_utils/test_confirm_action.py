"""The controller's half of commit-confirm: the module, then its confirmation over a new connection."""

from unittest import mock

import pytest
from ansible.errors import AnsibleConnectionFailure
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar

from ansible_collections.bulwark.hardening.plugins.action.firewall import ActionModule
from ansible_collections.bulwark.hardening.plugins.plugin_utils import commit_confirm

PENDING = {"changed": True, "pending": True}
ROLLED_BACK = {
    "failed": True,
    "confirmed": False,
    "state": "rolled-back",
    "msg": "firewall: the change was rolled back by the host (2026-12-02T02:21:41Z): the previous state",
}


def run(answers, check_mode=False, **args):
    """The action with `answers` for its module calls in turn (an exception is raised); returns
    (result, the module calls made, how often the connection was reset)."""
    loader = DataLoader()
    task = mock.MagicMock(
        args={"rollback_timeout": 10, **args}, check_mode=check_mode, async_val=0, diff=False
    )
    connection = mock.MagicMock()
    action = ActionModule(
        task,
        connection=connection,
        play_context=PlayContext(),
        loader=loader,
        templar=Templar(loader=loader),
        shared_loader_obj=None,
    )
    calls, pending = [], list(answers)

    def execute_module(module_name, module_args, task_vars):
        calls.append((module_name, dict(module_args)))
        answer = pending.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    action._execute_module = execute_module
    return action.run(task_vars={}), calls, connection.reset.call_count


def test_a_pending_change_is_confirmed_over_a_new_connection_in_the_same_task():
    result, calls, resets = run([PENDING, {"changed": True, "confirmed": True, "state": "armed"}],
                                reconnect_and_confirm=True)  # fmt: skip
    assert [name for name, _args in calls] == [
        "bulwark.hardening.firewall",
        "bulwark.hardening.commit_confirm",
    ]
    assert calls[1][1] == {"concern": "firewall"}
    assert resets == 1  # dropped before the confirmation: it logs in anew
    assert result["confirmed"] is True and result["pending"] is False and result["changed"] is True
    assert not result.get("failed")


@pytest.mark.parametrize(
    ("answer", "args", "check_mode"),
    [
        ({"changed": False, "pending": False}, {"reconnect_and_confirm": True}, False),  # nothing to confirm
        (PENDING, {}, False),  # the caller confirms itself
        (PENDING, {"reconnect_and_confirm": True}, True),  # check mode confirms nothing
        ({"failed": True, "msg": "refused", "pending": False}, {"reconnect_and_confirm": True}, False),
    ],
)
def test_no_confirmation_unless_asked_for_a_live_pending_change(answer, args, check_mode):
    result, calls, resets = run([answer], check_mode=check_mode, **args)
    assert len(calls) == 1 and resets == 0
    assert "confirmed" not in result


def test_a_confirmation_the_host_refuses_fails_naming_the_state():
    result, _calls, _resets = run([PENDING, ROLLED_BACK], reconnect_and_confirm=True)
    assert result["failed"] is True and result["confirmed"] is False
    assert result["msg"] == ROLLED_BACK["msg"] + " (state: rolled-back)"
    assert result["changed"] is True  # the change was applied, and undone: never "ok"


def test_a_login_that_fails_is_retried_until_the_host_has_rolled_back(monkeypatch):
    monkeypatch.setattr(commit_confirm.time, "sleep", lambda _s: None)
    answers = [
        PENDING,
        AnsibleConnectionFailure("timed out"),
        AnsibleConnectionFailure("timed out"),
        ROLLED_BACK,
    ]
    result, calls, resets = run(answers, reconnect_and_confirm=True)
    assert len(calls) == 4 and resets == 3  # every attempt on a new connection
    assert result["failed"] is True
    assert "the host was reached again after" in result["msg"] and result["msg"].endswith(
        "(state: rolled-back)"
    )


def test_a_host_never_reached_again_fails_as_such_after_the_window_and_a_margin(monkeypatch):
    clock = iter(range(0, 10_000, 30))
    monkeypatch.setattr(commit_confirm.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(commit_confirm.time, "sleep", lambda _s: None)
    result, calls, _resets = run(
        [PENDING] + [AnsibleConnectionFailure("timed out")] * 10, reconnect_and_confirm=True
    )
    assert result["failed"] is True and result["state"] == "unknown"
    assert "could not log in over a new connection after the change" in result["msg"]
    assert len(calls) == 1 + 3  # 0, 30, 60 s: retried, then 90 s > 10 s window + 60 s margin: given up
