"""admin_accounts' plan as host operations: the old order, each step's inverse, visudo on the drop-in."""

import collections

from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import apply
from ansible_collections.bulwark.hardening.plugins.module_utils.host import plan as host

Entry = collections.namedtuple("Entry", "home uid gid")


def write_keys(name, text):  # stands for the module's host-layer function
    raise AssertionError("never called while planning")


RESULT = {
    "group_create": True,
    "create": [{"name": "alice", "shell": "/bin/bash", "groups": ["sshusers"]}],
    "modify": [{"name": "bob", "shell": "/bin/zsh", "add_groups": ["sshusers"]}],
    "remove": ["mallory"],
    "keys": {"alice": (None, "k1\n"), "bob": ("old\n", "k2\n")},
    "remove_keys2": ["bob"],
    "nologin": ["games"],
}
LIVE = {
    "users": {"bob": {"shell": "/bin/bash"}, "games": {"shell": "/usr/games"}},
    "authorized_keys2": {"bob": "legacy\n"},
}
PARAMS = {"group": "sshusers", "remove_home": True}


def _plan(sudoers=None):
    entries = {"bob": Entry("/home/bob", 1001, 1001)}
    return apply.host_plan(
        RESULT,
        LIVE,
        PARAMS,
        sudoers=sudoers,
        write_keys=write_keys,
        entries=entries,
        visudo="/usr/sbin/visudo",
    )


def test_the_steps_run_in_the_old_order():
    assert _plan().words() == [
        "create group sshusers",
        "create user alice",
        "modify user bob: shell",
        "modify user bob: add to sshusers",
        "end the sessions of mallory",
        "remove user mallory",
        "authorized_keys of alice",
        "authorized_keys of bob",
        "nologin shell for games",
        "remove bob's authorized_keys2",
    ]


def test_each_step_is_undone_where_it_can_be():
    ops = _plan().ops
    inverses = {op.what: op.inverse for op in ops}
    assert inverses["create group sshusers"].argv == ("groupdel", "sshusers")
    assert inverses["create user alice"].argv == ("userdel", "--remove", "alice")
    assert inverses["modify user bob: shell"].argv == ("usermod", "--shell", "/bin/bash", "bob")
    assert inverses["modify user bob: add to sshusers"].argv == ("gpasswd", "--delete", "bob", "sshusers")
    assert inverses["end the sessions of mallory"] is None and inverses["remove user mallory"] is None
    assert inverses["authorized_keys of alice"] is None  # a new account: removing it removes its keys
    assert inverses["authorized_keys of bob"] == host.Call(
        write_keys, ("bob", "old\n"), what="put back the authorized_keys of bob"
    )
    assert inverses["nologin shell for games"].argv == ("usermod", "--shell", "/usr/games", "games")
    legacy = inverses["remove bob's authorized_keys2"]
    assert (legacy.content, legacy.mode, legacy.uid, legacy.anchor, legacy.owner) == (
        "legacy\n",
        0o600,
        1001,
        "/home/bob",
        1001,
    )
    # pkill finds no process (1) and userdel finds no mail spool (12): both are success.
    assert ops[4].ok == (0, 1) and ops[5].ok == (0, 12)


def test_the_sudoers_drop_in_is_checked_by_visudo_as_written():
    drop_in = _plan(("/etc/sudoers.d/bulwark-admins", "old\n", "new\n")).ops[-1]
    assert (drop_in.content, drop_in.mode, drop_in.verify) == (
        "new\n",
        0o440,
        ("/usr/sbin/visudo", "-cf", "{}"),
    )
    assert drop_in.inverse.content == "old\n"
    new = _plan(("/etc/sudoers.d/bulwark-admins", None, "new\n")).ops[-1]
    assert isinstance(new.inverse, host.Remove)
