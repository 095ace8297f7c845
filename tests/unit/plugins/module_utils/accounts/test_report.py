"""accounts/report.py: what admin_accounts reports of a plan, as data."""

from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import report

USERS = {
    "alice": {"uid": 1000, "shell": "/bin/bash", "groups": ["alice", "sshusers"]},
    "bob": {"uid": 1001, "shell": "/bin/bash", "groups": ["bob"]},
    "games": {"uid": 5, "shell": "/bin/sh", "groups": ["games"]},
}
LIVE = {"users": USERS, "authorized_keys2": {"bob": ""}}
PLAN = {
    "group_create": False,
    "create": [{"name": "carol", "shell": "/bin/bash", "groups": ["sshusers"]}],
    "modify": [{"name": "bob", "add_groups": ["sshusers"]}],
    "remove": ["alice"],
    "nologin": ["games"],
    "keys": {},
    "remove_keys2": ["bob"],
}


def test_uid_min_reads_login_defs_and_defaults_to_1000():
    assert report.uid_min("# c\nUID_MIN\t\t 2000\nUID_MAX 60000\n") == 2000
    assert report.uid_min("UID_MIN x\n") == 1000
    assert report.uid_min(None) == 1000


def test_the_accounts_diff_shows_each_touched_account_before_and_after():
    entries = report.diffs(LIVE, PLAN, "sshusers", ("/etc/sudoers.d/x", None, "new\n"))
    accounts = entries[0]
    assert accounts["before"] == (
        "user alice: shell /bin/bash, in sshusers: yes\n"
        "user bob: shell /bin/bash, in sshusers: no\n"
        "user carol: absent\n"
        "user games: shell /bin/sh, in sshusers: no\n"
    )
    assert accounts["after"] == (
        "user alice: absent\n"
        "user bob: shell /bin/bash, in sshusers: yes\n"
        "user carol: shell /bin/bash, in sshusers: yes\n"
        "user games: shell /usr/sbin/nologin, in sshusers: no\n"
    )
    assert [e["after_header"] for e in entries[1:]] == ["bob: authorized_keys2 (removed)", "/etc/sudoers.d/x"]
    assert entries[-1]["before"] == "" and entries[-1]["after"] == "new\n"
    assert USERS["bob"]["groups"] == ["bob"]  # the live view is not changed by the planned one


def test_no_change_no_diff_and_the_members_are_those_after_the_plan():
    idle = {**PLAN, "create": [], "modify": [], "remove": [], "nologin": [], "remove_keys2": []}
    assert report.diffs(LIVE, idle, "sshusers") == []
    assert report.members(LIVE, PLAN, "sshusers") == ["bob", "carol"]
    values = report.exit_values(LIVE, PLAN, "sshusers", actions=["x"], sudoers_file="")
    assert values["created"] == ["carol"] and values["removed"] == ["alice"] and values["key_changes"] == {}
