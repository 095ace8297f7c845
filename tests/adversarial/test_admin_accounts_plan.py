"""admin_accounts runs its changes as one host plan (real useradd, visudo, files in a private /etc and
/home): a new admin gets its account, keys and sudoers grant; when a later step fails, what was applied
before it is undone (the new account removed) and the failure says so; check mode touches nothing."""

import os
import pwd
import subprocess

import pytest

NAME = "bwplan"


@pytest.fixture
def host(private_path, tmp_path):
    private_path("/etc", copy=True)  # useradd renames the account files: the whole directory is private
    private_path("/home", copy=False)
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return (tmp_path / "key.pub").read_text().strip()


def _args(key):
    return {"admins": [{"name": NAME, "ssh_keys": [key]}], "group": "bwadmins"}


def _known(name):
    return any(line.split(":")[0] == name for line in open("/etc/passwd").read().splitlines())


def test_check_mode_touches_nothing(host, run_module):
    done = run_module("admin_accounts", _args(host), check_mode=True)
    assert done.rc == 0 and done.result["changed"] is True, done
    assert not done.ops, done.ops
    assert not _known(NAME)


def test_a_new_admin_gets_account_keys_and_grant_then_nothing_changes(host, run_module):
    done = run_module("admin_accounts", _args(host))
    assert done.rc == 0 and done.result["changed"] is True, done
    entry = pwd.getpwnam(NAME)
    keys = os.path.join(entry.pw_dir, ".ssh", "authorized_keys")
    assert host in open(keys).read().splitlines()
    assert os.stat(keys).st_uid == entry.pw_uid
    subprocess.run(["visudo", "-cf", "/etc/sudoers.d/bulwark-admins"], check=True, capture_output=True)
    again = run_module("admin_accounts", _args(host))
    assert (again.rc, again.result["changed"]) == (0, False), again


def test_a_failing_last_step_removes_the_account_it_created_and_says_so(host, run_module):
    probe = run_module("admin_accounts", _args(host), check_mode=False, fault="fail:999")
    steps = [op.split("\t", 1)[1] for op in probe.ops]
    assert probe.rc == 0, probe
    subprocess.run(["userdel", "--remove", NAME], check=True)
    subprocess.run(["groupdel", "bwadmins"], check=True)
    os.unlink("/etc/sudoers.d/bulwark-admins")
    last = len(steps)  # the sudoers drop-in's write
    assert steps[0] == "run groupadd bwadmins" and steps[1].startswith("run useradd"), steps
    assert steps[-1] == "write /etc/sudoers.d/bulwark-admins", steps
    done = run_module("admin_accounts", _args(host), fault=f"fail:{last}")
    assert done.result["failed"], done
    msg = done.result["msg"]
    assert msg.startswith("write /etc/sudoers.d/bulwark-admins failed"), msg
    assert f"Put back: remove the new user {NAME}; remove group bwadmins" in msg, msg
    assert not _known(NAME)
    assert not os.path.exists("/etc/sudoers.d/bulwark-admins")
