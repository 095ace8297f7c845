"""The guard's StrictModes check: sshd's safe_path() and Debian's secure_permissions(), table by table."""

from pathlib import Path

import pytest
from test_sshd_guard import facts as guard_facts

from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import guard
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.effective import parse

HARDENED = (Path(__file__).parent / "fixtures" / "sshd_T_debian12_hardened.txt").read_text()
UID, OTHER = 1000, 1001
KEYS = "/home/deploy/.ssh/authorized_keys"


def eff(**changes):
    lines = [line for line in HARDENED.splitlines() if line.split(" ", 1)[0] not in changes]
    return parse("\n".join(lines + [f"{key} {value}" for key, value in changes.items()]))


def entry(path, mode, *, uid=UID, kind="directory", owner=None, group=None, gid=UID):
    made = {"path": path, "kind": kind, "mode": mode, "uid": uid, "gid": gid}
    made["owner"] = owner if owner is not None else {0: "root", UID: "deploy", OTHER: "alice"}.get(uid)
    if group is not None:
        made["group"] = None if group == "missing" else group
    return made


def key_file(home_mode=0o750, ssh_mode=0o700, file_mode=0o600, **home_extra):
    return {
        "path": KEYS,
        "keys": 1,
        "real": KEYS,
        "chain": [
            entry(KEYS, file_mode, kind="file"),
            entry("/home/deploy/.ssh", ssh_mode),
            entry("/home/deploy", home_mode, **home_extra),
        ],
    }


def facts(*key_files):
    return guard_facts(key_files=list(key_files))


PRIVATE = {"name": "deploy", "primary": [UID], "members": []}


@pytest.mark.parametrize(
    ("real_path", "real_home", "walked"),
    [
        # Below the home: the file, then each directory up to and including the home, and no further.
        (KEYS, "/home/deploy", [KEYS, "/home/deploy/.ssh", "/home/deploy"]),
        # Outside the home: every directory up to /.
        (
            "/etc/ssh/keys/deploy",
            "/home/deploy",
            ["/etc/ssh/keys/deploy", "/etc/ssh/keys", "/etc/ssh", "/etc", "/"],
        ),
        # The home has no canonical path (realpath fails): sshd walks up to /.
        (KEYS, None, [KEYS, "/home/deploy/.ssh", "/home/deploy", "/home", "/"]),
        # A home of / stops at /.
        ("/.ssh/authorized_keys", "/", ["/.ssh/authorized_keys", "/.ssh", "/"]),
        # A prefix of the home is not the home.
        ("/home/deploy2/k", "/home/deploy", ["/home/deploy2/k", "/home/deploy2", "/home", "/"]),
    ],
)
def test_safe_path_walks_from_the_file_up_to_the_home_or_to_the_root(real_path, real_home, walked):
    assert guard.strict_modes_paths(real_path, real_home) == walked


@pytest.mark.parametrize(
    ("home", "problem"),
    [
        (entry("/home/deploy", 0o755), None),
        (entry("/home/deploy", 0o700, uid=0), None),  # root may own it
        (entry("/home/deploy", 0o1755), None),  # sticky, setgid bits do not matter
        (entry("/home/deploy", 0o2750), None),
        (
            entry("/home/deploy", 0o755, uid=OTHER),
            "/home/deploy is owned by alice, neither deploy nor root (chown deploy /home/deploy)",
        ),
        (
            entry("/home/deploy", 0o755, uid=4242),
            "/home/deploy is owned by uid 4242, neither deploy nor root (chown deploy /home/deploy)",
        ),
        (
            entry("/home/deploy", 0o757),
            "/home/deploy is world-writable (mode 0757) (chmod o-w /home/deploy)",
        ),
        (
            entry("/home/deploy", 0o777, group=PRIVATE),
            "/home/deploy is world-writable (mode 0777) (chmod o-w /home/deploy)",
        ),
        # Debian allows group write when the group has exactly one member, the user (its primary group) ...
        (entry("/home/deploy", 0o775, group=PRIVATE), None),
        # ... or the path's owner named alone in the group's member list.
        (entry("/home/deploy", 0o775, group={"name": "d", "primary": [], "members": ["deploy"]}), None),
        (entry("/home/deploy", 0o775, group={"name": "d", "primary": [UID], "members": ["deploy"]}), None),
        # Owned by root, group-writable by the user's private group: allowed too (gr_mem is empty).
        (entry("/home/deploy", 0o775, uid=0, group=PRIVATE), None),
        (
            entry("/home/deploy", 0o775, group={"name": "staff", "primary": [UID, OTHER], "members": []}),
            "/home/deploy is group-writable (mode 0775) by group staff, not deploy's alone"
            " (chmod g-w /home/deploy)",
        ),
        (
            entry("/home/deploy", 0o775, group={"name": "staff", "primary": [OTHER], "members": []}),
            "/home/deploy is group-writable (mode 0775) by group staff, not deploy's alone"
            " (chmod g-w /home/deploy)",
        ),
        (
            entry("/home/deploy", 0o775, group={"name": "staff", "primary": [UID], "members": ["alice"]}),
            "/home/deploy is group-writable (mode 0775) by group staff, not deploy's alone"
            " (chmod g-w /home/deploy)",
        ),
        (
            entry(
                "/home/deploy", 0o775, group={"name": "staff", "primary": [], "members": ["deploy", "alice"]}
            ),
            "/home/deploy is group-writable (mode 0775) by group staff, not deploy's alone"
            " (chmod g-w /home/deploy)",
        ),
        # A group without members (setgid programs' groups) is not the user's.
        (
            entry("/home/deploy", 0o775, group={"name": "empty", "primary": [], "members": []}),
            "/home/deploy is group-writable (mode 0775) by group empty, not deploy's alone"
            " (chmod g-w /home/deploy)",
        ),
        (
            entry("/home/deploy", 0o775, gid=4343, group="missing"),
            "/home/deploy is group-writable (mode 0775) and its group 4343 does not exist"
            " (chmod g-w /home/deploy)",
        ),
    ],
)
def test_each_path_is_judged_as_debians_sshd_judges_it(home, problem):
    keys = key_file()
    keys["chain"][2] = home
    assert guard.strict_modes_problem(keys, "deploy", UID) == problem


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"file_mode": 0o644}, None),
        ({"file_mode": 0o620, "group": PRIVATE}, None),  # the user's private group: allowed
        ({"file_mode": 0o666}, f"{KEYS} is world-writable (mode 0666) (chmod o-w {KEYS})"),
        (
            {"ssh_mode": 0o777},
            "/home/deploy/.ssh is world-writable (mode 0777) (chmod o-w /home/deploy/.ssh)",
        ),
    ],
)
def test_the_file_and_the_directories_between_it_and_the_home_count(changes, problem):
    group = changes.pop("group", None)
    keys = key_file(**changes)
    if group:
        keys["chain"][0]["group"] = group
    assert guard.strict_modes_problem(keys, "deploy", UID) == problem


def test_the_first_problem_from_the_file_upwards_is_named_as_sshd_names_it():
    keys = key_file(home_mode=0o777, ssh_mode=0o777)
    assert guard.strict_modes_problem(keys, "deploy", UID).startswith("/home/deploy/.ssh is world-writable")


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        (
            {"path": KEYS, "keys": 1, "real": None, "chain": []},
            f"{KEYS} has no canonical path (realpath fails)",
        ),
        (
            {"path": KEYS, "keys": 1, "real": KEYS, "chain": [entry(KEYS, 0o600, kind="other")]},
            f"{KEYS} is not a regular file",
        ),
        (
            {
                "path": KEYS,
                "keys": 1,
                "real": KEYS,
                "chain": [entry(KEYS, 0o600, kind="file"), {"path": "/home/deploy/.ssh", "kind": None}],
            },
            "/home/deploy/.ssh cannot be read",
        ),
    ],
)
def test_what_cannot_be_checked_is_refused(keys, problem):
    assert guard.strict_modes_problem(keys, "deploy", UID) == problem


def test_a_group_writable_home_is_refused_by_name_when_strict_modes_is_yes():
    staff = {"name": "staff", "primary": [UID, OTHER], "members": []}
    problems = guard.check(eff(strictmodes="yes"), facts(key_file(home_mode=0o775, group=staff)))
    assert problems == [
        "StrictModes yes: /home/deploy is group-writable (mode 0775) by group staff, not deploy's alone"
        f" (chmod g-w /home/deploy): sshd would refuse deploy's keys in {KEYS}"
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"strictmodes": "no"},  # sshd does not look at the modes
        {"pubkeyauthentication": "no", "passwordauthentication": "yes"},  # keys do not matter
    ],
)
def test_nothing_to_say_when_sshd_does_not_check_or_keys_are_not_used(changes):
    staff = {"name": "staff", "primary": [UID, OTHER], "members": []}
    found = facts(key_file(home_mode=0o775, group=staff))
    found["has_password"] = True
    assert guard.check(eff(**changes), found) == []


def test_a_safe_keys_file_passes_and_every_unsafe_one_is_named():
    outside = {
        "path": "/etc/ssh/keys/deploy",
        "keys": 2,
        "real": "/etc/ssh/keys/deploy",
        "chain": [
            entry("/etc/ssh/keys/deploy", 0o644, kind="file", uid=0),
            entry("/etc/ssh/keys", 0o755, uid=0),
            entry("/etc/ssh", 0o755, uid=0),
            entry("/etc", 0o775, uid=0, gid=0, group={"name": "root", "primary": [0], "members": []}),
            entry("/", 0o755, uid=0),
        ],
    }
    assert guard.check(eff(), facts(key_file())) == []
    problems = guard.check(eff(), facts(key_file(), outside))
    assert problems == [
        "StrictModes yes: /etc is group-writable (mode 0775) by group root, not deploy's alone"
        " (chmod g-w /etc): sshd would refuse deploy's keys in /etc/ssh/keys/deploy"
    ]


def test_facts_without_key_files_leave_the_check_out():
    found = facts()
    del found["key_files"]
    assert guard.check(eff(), found) == []
