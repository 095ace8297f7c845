import re
from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import files as baseline
from ansible_collections.bulwark.hardening.plugins.module_utils.baseline.files import BaselineSpecError
from ansible_collections.bulwark.hardening.plugins.module_utils.host import plan as host

FIXTURES = Path(__file__).parent / "fixtures"
IDS = {"user": {"root": 0}, "group": {"root": 0, "shadow": 42}}
LOGIN_DEFS = [
    {"regexp": r"^\s*UMASK\s", "line": "UMASK 027"},
    {"regexp": r"^\s*HOME_MODE\s", "line": "HOME_MODE 0750"},
    {"regexp": r"^\s*PASS_MIN_DAYS\s", "line": "PASS_MIN_DAYS 1"},
]


def live_file(content, mode=0o644, uid=0, gid=0):
    return {"kind": "file", "mode": mode, "uid": uid, "gid": gid, "content": content}


def plan(entries, live, check_mode=False):
    return baseline.plan(baseline.validate(entries), live, IDS, check_mode)


def test_an_unchanged_baseline_plans_nothing():
    entries = [
        {"path": "/etc/modprobe.d", "state": "directory", "mode": "0755"},
        {"path": "/etc/issue", "content": "Authorized access only.\n", "mode": "0644"},
        {"path": "/etc/shadow", "state": "attributes", "mode": "0640", "group": "shadow"},
        {"path": "/etc/profile.d/90-bulwark-umask.sh", "state": "absent"},
    ]
    live = {
        "/etc/modprobe.d": {"kind": "directory", "mode": 0o755, "uid": 0, "gid": 0, "content": None},
        "/etc/issue": live_file("Authorized access only.\n"),
        "/etc/shadow": {"kind": "file", "mode": 0o640, "uid": 0, "gid": 42, "content": None},
        "/etc/profile.d/90-bulwark-umask.sh": None,
    }
    assert plan(entries, live) == ([], {})


def test_each_kind_of_difference_is_one_change_with_its_own_diff():
    entries = [
        {"path": "/etc/modprobe.d", "state": "directory", "mode": "0755"},
        {"path": "/etc/issue", "content": "Authorized access only.\n", "mode": "0644"},
        {"path": "/etc/shadow", "state": "attributes", "mode": "0640", "group": "shadow"},
        {"path": "/etc/at.allow", "state": "attributes", "mode": "0640"},
        {"path": "/etc/profile.d/90-bulwark-umask.sh", "state": "absent"},
    ]
    live = {
        "/etc/modprobe.d": None,
        "/etc/issue": live_file("Debian GNU/Linux 12 \\n \\l\n\n"),
        "/etc/shadow": {"kind": "file", "mode": 0o644, "uid": 0, "gid": 0, "content": None},
        "/etc/at.allow": None,
        "/etc/profile.d/90-bulwark-umask.sh": live_file("umask 027\n"),
    }
    changes, skipped = plan(entries, live)
    assert [(c["path"], c["action"]) for c in changes] == [
        ("/etc/modprobe.d", "directory"),
        ("/etc/issue", "write"),
        ("/etc/shadow", "attributes"),
        ("/etc/profile.d/90-bulwark-umask.sh", "remove"),
    ]
    assert skipped == {"/etc/at.allow": "not on this host"}
    diffs = [(c["diff"]["before"], c["diff"]["after"]) for c in changes]
    assert diffs == [
        ("", "directory mode 0755, owner root:root\n"),
        ("Debian GNU/Linux 12 \\n \\l\n\n", "Authorized access only.\n"),
        ("mode 0644, owner root:root\n", "mode 0640, owner root:shadow\n"),
        ("umask 027\n", ""),
    ]
    assert (changes[2]["mode"], changes[2]["uid"], changes[2]["gid"]) == (0o640, 0, 42)


def test_a_mode_change_of_a_file_with_the_same_content_changes_only_its_attributes():
    entries = [{"path": "/etc/issue", "content": "x\n", "mode": "0644"}]
    changes, _unused = plan(entries, {"/etc/issue": live_file("x\n", mode=0o600)})
    assert [c["action"] for c in changes] == ["attributes"]
    assert changes[0]["diff"]["before"] == "# mode 0600, owner root:root\nx\n"
    assert changes[0]["diff"]["after"] == "# mode 0644, owner root:root\nx\n"


@pytest.mark.parametrize("release", ["debian12", "debian13"])
def test_login_defs_lines_replace_the_setting_or_are_appended_and_then_hold(release):
    shipped = (FIXTURES / f"login.defs-{release}").read_text()
    entries = [{"path": "/etc/login.defs", "state": "lines", "lines": LOGIN_DEFS}]
    changes, _unused = plan(entries, {"/etc/login.defs": live_file(shipped)})
    after = changes[0]["content"]
    assert changes[0]["mode"] == 0o644  # the file keeps its mode
    assert re.findall(r"^UMASK.*$", after, re.M) == ["UMASK 027"]
    assert re.findall(r"^PASS_MIN_DAYS.*$", after, re.M) == ["PASS_MIN_DAYS 1"]
    assert re.findall(r"^HOME_MODE.*$", after, re.M) == ["HOME_MODE 0750"]
    # Debian 12 has HOME_MODE only commented out, Debian 13 has no UMASK line: each appended at the end.
    missing = "HOME_MODE 0750" if release == "debian12" else "UMASK 027"
    assert after.endswith(f"\n{missing}\n")
    assert len(after.splitlines()) == len(shipped.splitlines()) + 1
    if release == "debian12":
        assert "#HOME_MODE\t0700\n" in after
    # The second run: nothing to do.
    assert plan(entries, {"/etc/login.defs": live_file(after)}) == ([], {})


def test_a_lines_file_not_there_yet_is_predicted_in_check_mode_and_refused_for_real():
    entries = [
        {
            "path": "/etc/default/sysstat",
            "state": "lines",
            "lines": [{"regexp": "^ENABLED=", "line": 'ENABLED="true"'}],
        }
    ]
    changes, _unused = plan(entries, {"/etc/default/sysstat": None}, check_mode=True)
    assert changes[0]["diff"]["after"] == 'ENABLED="true"\n'
    with pytest.raises(BaselineSpecError, match=r"^files\[0\]\.path: /etc/default/sysstat does not exist"):
        plan(entries, {"/etc/default/sysstat": None})


def test_a_secret_file_diff_says_that_it_changed_and_never_shows_the_content():
    entries = [{"path": "/etc/rsyslog.d/x.conf", "content": "token=NEW\n", "mode": "0600", "secret": True}]
    changes, _unused = plan(entries, {"/etc/rsyslog.d/x.conf": live_file("token=OLD\n", mode=0o600)})
    assert changes[0]["diff"]["before"] == "(secret: old content not shown)\n"
    assert changes[0]["diff"]["after"] == "(secret: new content not shown)\n"
    assert changes[0]["content"] == "token=NEW\n"
    created, _unused = plan(entries, {"/etc/rsyslog.d/x.conf": None})
    assert (created[0]["diff"]["before"], created[0]["diff"]["after"]) == (
        "",
        "(secret: content not shown)\n",
    )
    removed, _unused = plan(
        [{"path": "/etc/rsyslog.d/x.conf", "state": "absent", "secret": True}],
        {"/etc/rsyslog.d/x.conf": live_file("token=OLD\n")},
    )
    assert removed[0]["diff"]["before"] == "(secret: content not shown)\n"


@pytest.mark.parametrize(
    ("kind", "state", "message"),
    [
        ("link", "file", r"files\[0\]\.path: /etc/issue is a symbolic link: refusing to change it"),
        ("link", "attributes", r"files\[0\]\.path: /etc/issue is a symbolic link"),
        (
            "directory",
            "file",
            r"files\[0\]\.path: it is a directory here, not a file: refusing to replace it",
        ),
        ("file", "directory", r"files\[0\]\.path: it is a file here, not a directory"),
        ("directory", "absent", r"files\[0\]\.path: /etc/issue is a directory: refusing to remove it"),
    ],
)
def test_a_path_of_another_kind_is_refused_not_replaced(kind, state, message):
    entry = {"path": "/etc/issue", "state": state}
    entry.update({"file": {"content": "x\n", "mode": "0644"}, "directory": {"mode": "0755"}}.get(state, {}))
    if state == "attributes":
        entry["mode"] = "0644"
    live = {"/etc/issue": {"kind": kind, "mode": 0o777, "uid": 0, "gid": 0, "content": None}}
    with pytest.raises(BaselineSpecError, match=message):
        plan([entry], live)


def test_an_owner_the_host_does_not_have_is_refused_by_name():
    with pytest.raises(BaselineSpecError, match=r"^files\[0\]\.group: there is no group 'adm' on this host$"):
        plan([{"path": "/etc/issue", "content": "x\n", "mode": "0644", "group": "adm"}], {"/etc/issue": None})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"path": "etc/issue", "content": "", "mode": "0644"},
            r"files\[1\]\.path: 'etc/issue' is not a plain absolute path",
        ),
        (
            {"path": "/etc/../shadow", "content": "", "mode": "0644"},
            r"files\[1\]\.path: '/etc/\.\./shadow' is not",
        ),
        ({"path": "/etc/a b", "content": "", "mode": "0644"}, r"files\[1\]\.path: '/etc/a b' is not"),
        ({"path": "/etc/x", "content": "", "mode": 420}, r"files\[1\]\.mode: 420 is not a mode"),
        ({"path": "/etc/x", "content": "", "mode": "0999"}, r"files\[1\]\.mode: '0999' is not a mode"),
        ({"path": "/etc/x", "content": "", "mode": "4755"}, r"files\[1\]\.mode: '4755' sets setuid"),
        ({"path": "/etc/x", "content": ""}, r"files\[1\]\.mode: required with state file"),
        ({"path": "/etc/x", "mode": "0644"}, r"files\[1\]\.content: required with state file"),
        (
            {"path": "/etc/x", "content": "a\x1b[2J", "mode": "0644"},
            r"files\[1\]\.content: the control character '\\x1b'",
        ),
        (
            {"path": "/etc/x", "content": "", "mode": "0644", "owner": "Root;"},
            r"files\[1\]\.owner: 'Root;' is not a user",
        ),
        ({"path": "/etc/x", "content": "", "mode": "0644", "colour": 1}, r"files\[1\]: unknown key 'colour'"),
        ({"path": "/etc/x", "state": "link"}, r"files\[1\]\.state: 'link' is not one of"),
        (
            {"path": "/etc/x", "state": "absent", "mode": "0644"},
            r"files\[1\]\.mode: not used with state absent",
        ),
        (
            {"path": "/etc/issue", "content": "", "mode": "0644"},
            r"files\[1\]\.path: /etc/issue is already files\[0\]",
        ),
        (
            {"path": "/etc/x", "state": "lines", "lines": [{"regexp": "^UMASK", "line": "umask 027"}]},
            r"files\[1\]\.lines\[0\]: the line 'umask 027' does not match its own regexp",
        ),
        (
            {"path": "/etc/x", "state": "lines", "lines": [{"regexp": "^A", "line": "A\nB"}]},
            r"files\[1\]\.lines\[0\]\.line: the control character '\\n'",
        ),
        (
            {"path": "/etc/x", "content": "", "mode": "0644", "validate": ["visudo", "-cf"]},
            r"files\[1\]\.validate: one argument must be %s",
        ),
    ],
)
def test_bad_entries_are_refused_naming_the_entry_and_field(entry, message):
    good = {"path": "/etc/issue", "content": "x\n", "mode": "0644"}
    with pytest.raises(BaselineSpecError, match="^" + message):
        baseline.validate([good, entry])


def test_validation_fills_in_the_defaults():
    (entry,) = baseline.validate(
        [{"path": "/etc/x", "content": "", "mode": "640", "validate": ["visudo", "-cf", "%s"]}]
    )
    assert (entry["mode"], entry["owner"], entry["group"], entry["secret"]) == (0o640, "root", "root", False)
    assert entry["validate"] == ["visudo", "-cf", "%s"]


UID_MIN_1000 = "# comment\nUID_MIN\t\t 1000\nUID_MAX 60000\n"


def test_regular_homes_are_those_of_accounts_from_uid_min_under_home():
    accounts = [
        ("root", 0, "/root"),
        ("daemon", 1, "/usr/sbin"),
        ("deploy", 1000, "/home/deploy"),
        ("svc", 1001, "/srv/svc"),
        ("nobody", 65534, "/nonexistent"),
        ("twin", 1002, "/home/deploy"),
    ]
    assert baseline.regular_homes(accounts, UID_MIN_1000) == ["/home/deploy"]
    assert baseline.regular_homes([("early", 600, "/home/early")], "UID_MIN 500\n") == ["/home/early"]
    assert baseline.regular_homes([("early", 600, "/home/early")], "") == []


def test_homes_lose_only_the_bits_beyond_the_cap_and_keep_setgid():
    live = {
        "/home/a": {"kind": "directory", "mode": 0o755, "uid": 1000, "gid": 1000},
        "/home/b": {"kind": "directory", "mode": 0o2775, "uid": 1001, "gid": 1001},
        "/home/c": {"kind": "directory", "mode": 0o700, "uid": 1002, "gid": 1002},
        "/home/d": {"kind": "link", "mode": 0o777, "uid": 1003, "gid": 1003},
        "/home/e": None,
    }
    changes = baseline.plan_homes(sorted(live), live, 0o750)
    assert [(c["path"], c["action"], oct(c["mode"]), c["uid"], c["gid"]) for c in changes] == [
        ("/home/a", "directory", "0o750", -1, -1),
        ("/home/b", "directory", "0o2750", -1, -1),
    ]
    assert changes[0]["diff"]["before"] == "mode 0755\n" and changes[0]["diff"]["after"] == "mode 0750\n"


def test_the_homes_cap_is_a_mode():
    assert baseline.validate_at_most(None) is None
    assert baseline.validate_at_most("0750") == 0o750
    with pytest.raises(baseline.BaselineSpecError, match=r"^homes_mode_at_most: '750\\n' is not a mode"):
        baseline.validate_at_most("750\n")


def test_the_changes_become_host_operations_each_undone_by_what_was_there():
    entries = [
        {"path": "/etc/modprobe.d", "state": "directory", "mode": "0755"},
        {
            "path": "/etc/issue",
            "content": "Authorized access only.\n",
            "mode": "0644",
            "validate": ["chk", "%s"],
        },
        {"path": "/etc/shadow", "state": "attributes", "mode": "0640", "group": "shadow"},
        {"path": "/etc/profile.d/90-bulwark-umask.sh", "state": "absent", "secret": True},
    ]
    live = {
        "/etc/modprobe.d": None,
        "/etc/issue": live_file("Debian\n", mode=0o600),
        "/etc/shadow": {"kind": "file", "mode": 0o644, "uid": 0, "gid": 0, "content": None},
        "/etc/profile.d/90-bulwark-umask.sh": live_file("umask 027\n"),
    }
    changes, _skipped = plan(entries, live)
    made = baseline.host_plan(changes, live)
    directory, write, attributes, remove = made.ops
    assert made.diff == [change["diff"] for change in changes]
    assert directory == host.Directory(
        "/etc/modprobe.d", 0o755, 0, 0, what="files[0] (/etc/modprobe.d): directory"
    )
    assert (write.content, write.mode, write.verify) == ("Authorized access only.\n", 0o644, ("chk", "{}"))
    assert write.inverse == host.Write("/etc/issue", "Debian\n", 0o600, 0, 0, what="put back /etc/issue")
    assert (attributes.mode, attributes.gid) == (0o640, 42)
    assert attributes.inverse == host.Attributes(
        "/etc/shadow", 0o644, 0, 0, what="put back the mode and owner of /etc/shadow"
    )
    assert remove.what == "files[3] (/etc/profile.d/90-bulwark-umask.sh): remove"
    assert remove.inverse.content == "umask 027\n" and remove.inverse.secret is True
