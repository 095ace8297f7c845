"""The admins' sudoers drop-in and authorized_keys against the real parsers.

sudoers: every admin list and log file that admin_accounts' validation accepts renders into a drop-in that
`visudo -c` accepts and that sudo's own parser (`cvtsudoers -f json`) reads as exactly the intended
grant: the declared admins in one User_Alias, one rule, the two Defaults; nothing else. Rejected input
is refused naming the option.

authorized_keys: every key line the validation accepts renders into a file in which `ssh-keygen -l`
(OpenSSH's key reader, options skipped as sshd skips them) finds exactly that one key.
"""

import json
import subprocess

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import authorized_keys as ak
from ansible_collections.bulwark.hardening.plugins.module_utils.accounts.plan import (
    AdminSpecError,
    render_sudoers,
    validate_options,
)

SPECIAL = [*" \"'\\#=%$`;|&(),:!/*\t\n\r\x00\x0b\x0c\x7f", "é", "\u2028", "\x85"]
TEXT = st.text(st.sampled_from(SPECIAL) | st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20)
TEXT = TEXT | st.sampled_from(["ALL", "%sudo", "root", "NOPASSWD: ALL"])
NAME = st.one_of(st.from_regex(r"[a-z_][a-z0-9_-]{0,8}", fullmatch=True), TEXT)
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# A second, unrelated key: smuggled into a comment, it must not become a key the module believes in.
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGoNA3UeMJhUtM4NrCOe3/2yodrhUrBx80IK7XvupUQZ other"


def _expected(names, logfile, nopasswd):
    """What cvtsudoers shows for the intended grant."""
    defaults = [{"Options": [{"use_pty": True}]}]
    if logfile:
        defaults.append({"Options": [{"logfile": logfile}]})
    expected = {"Defaults": defaults}
    if names:
        expected["User_Aliases"] = {"BULWARK_ADMINS": [{"username": name} for name in names]}
        command = {
            "runasusers": [{"username": "ALL"}],
            "runasgroups": [{"usergroup": "ALL"}],
            "Commands": [{"command": "ALL"}],
        }
        if nopasswd:
            command["Options"] = [{"authenticate": False}]
        expected["User_Specs"] = [
            {
                "User_List": [{"useralias": "BULWARK_ADMINS"}],
                "Host_List": [{"hostname": "ALL"}],
                "Cmnd_Specs": [command],
            }
        ]
    return expected


def _parsed(path):
    done = subprocess.run(["visudo", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(["cvtsudoers", "-f", "json", str(path)], capture_output=True, text=True, check=True)
    parsed = json.loads(done.stdout)
    # cvtsudoers adds setenv to an "ALL" command (sudo's implied SETENV): not a grant of ours.
    for spec in parsed.get("User_Specs", []):
        for command in spec["Cmnd_Specs"]:
            options = [o for o in command.get("Options", []) if o != {"setenv": True}]
            command.pop("Options", None)
            if options:
                command["Options"] = options
    return parsed


@SETTINGS
@given(
    names=st.lists(NAME, max_size=4),
    logfile=st.one_of(st.just("/var/log/sudo.log"), TEXT),
    nopasswd=st.booleans(),
)
@example(names=["alice", "ALL"], logfile="/var/log/sudo.log", nopasswd=True)
@example(names=["alice, root"], logfile="/var/log/sudo.log", nopasswd=False)
@example(names=["alice\nALL ALL=(ALL) NOPASSWD: ALL"], logfile="/var/log/sudo.log", nopasswd=False)
@example(names=["%sudo"], logfile="/var/log/sudo.log", nopasswd=False)
@example(names=["#0"], logfile="/var/log/sudo.log", nopasswd=False)
@example(names=["alice"], logfile='/var/log/x"\nALL ALL=(ALL) NOPASSWD: ALL', nopasswd=False)
@example(names=["alice"], logfile="/var/log/sudo.log ALL=(ALL) NOPASSWD: ALL", nopasswd=False)
@example(names=["alice"], logfile="/var/log/$(touch /tmp/x)", nopasswd=False)
@example(names=["alice"], logfile="/var/log/sudo%h.log", nopasswd=False)
@example(names=["alice"], logfile="", nopasswd=False)
def test_sudoers_grants_exactly_the_declared_admins(tmp_path, names, logfile, nopasswd):
    params = {
        "group": "bulwark-admins",
        "admins": [{"name": name, "ssh_keys": [], "state": "present", "sudo": True} for name in names],
        "sudo_logfile": logfile,
    }
    try:
        admins = validate_options(params)
    except AdminSpecError as exc:
        assert "admins[" in str(exc) or "sudo_logfile" in str(exc), str(exc)
        return
    dropin = tmp_path / "bulwark-admins"
    dropin.write_text(render_sudoers(admins, nopasswd, logfile=logfile), encoding="utf-8")
    assert _parsed(dropin) == _expected([a["name"] for a in admins], logfile, nopasswd)


@pytest.fixture(scope="session")
def public_key(tmp_path_factory):
    path = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    key_type, blob = path.with_suffix(".pub").read_text().split()[:2]
    return key_type, blob


@SETTINGS
@given(options=st.one_of(st.just(""), TEXT), comment=TEXT)
@example(options="", comment="alice\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther")
@example(options="", comment="alice\u2028" + OTHER_KEY)
@example(options="", comment="alice\x0c" + OTHER_KEY)
@example(options='command="/bin/sh -c \\"id\\""', comment="x")
@example(options='from="10.0.0.0/8",no-pty', comment="# not a comment line")
@example(options='command="unterminated', comment="x")
@example(options="1", comment="")
@example(options="bogus,no-pty", comment="")
def test_an_accepted_key_line_is_exactly_one_key(tmp_path, public_key, options, comment):
    key_type, blob = public_key
    line = " ".join(part for part in (options, key_type, blob, comment) if part)
    try:
        key = ak.parse_key(line)
    except ak.InvalidKeyError:
        return
    text = ak.render_file([key], "header")
    # The module reads back what sshd will read: one key, that one.
    assert ak.parse_file(text)[0] == [key]
    path = tmp_path / "authorized_keys"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True, check=False)
    found = done.stdout.decode("utf-8", "replace").split("\n")
    assert done.returncode == 0, done.stderr
    assert len([f for f in found if f]) == 1, found
    _bits, fingerprint, rest = found[0].split(" ", 2)
    assert fingerprint == key.fingerprint
    # The comment sshd ignores (ssh-keygen shows the options in its place when there is none).
    assert rest.endswith(" (ED25519)")
