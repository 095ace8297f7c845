"""host/accounts.py: the one reader of the account database."""

import grp
import os
import pwd

from ansible_collections.bulwark.hardening.plugins.module_utils.host import accounts, files


def test_users_and_groups_are_read_as_plain_tuples():
    me = pwd.getpwuid(os.getuid())
    mine = accounts.user(me.pw_name)
    assert mine == accounts.Account(me.pw_name, me.pw_uid, me.pw_gid, me.pw_dir, me.pw_shell)
    assert accounts.user_by_uid(me.pw_uid) == mine
    assert mine in accounts.users()
    group = grp.getgrgid(me.pw_gid)
    assert accounts.group(group.gr_name) == accounts.Group(group.gr_name, group.gr_gid, list(group.gr_mem))
    assert accounts.group_by_gid(group.gr_gid) == accounts.group(group.gr_name)
    assert accounts.group(group.gr_name) in accounts.groups()
    assert group.gr_name in accounts.group_names_of(mine)


def test_what_the_host_does_not_know_is_none():
    assert accounts.user("no-such-user-here") is None
    assert accounts.user_by_uid(2**31 - 7) is None
    assert accounts.group("no-such-group-here") is None
    assert accounts.group_by_gid(2**31 - 7) is None


def test_a_gid_without_a_name_is_given_as_the_number(monkeypatch):
    monkeypatch.setattr(accounts.os, "getgrouplist", lambda name, gid: [gid, 2**31 - 7])
    me = accounts.user_by_uid(os.getuid())
    assert accounts.group_names_of(me)[1] == str(2**31 - 7)


def test_the_invoking_user_is_sudos_else_this_process_own(monkeypatch):
    monkeypatch.setenv("SUDO_USER", "deploy")
    assert accounts.invoking_user() == "deploy"
    monkeypatch.delenv("SUDO_USER")
    assert accounts.invoking_user() == pwd.getpwuid(os.getuid()).pw_name


def test_files_reads_the_database_through_host_accounts(monkeypatch):
    """One way to read it: files.user_id/group_id/accounts answer what host/accounts answers."""
    fake = accounts.Account("carol", 4242, 4242, "/home/carol", "/bin/sh")
    monkeypatch.setattr(accounts, "users", lambda: [fake])
    monkeypatch.setattr(accounts, "user", lambda name: fake if name == "carol" else None)
    monkeypatch.setattr(
        accounts, "group", lambda name: accounts.Group("staff", 50, []) if name == "staff" else None
    )
    assert files.accounts() == [("carol", 4242, "/home/carol")]
    assert files.user_id("carol") == 4242
    assert files.user_id("dave") is None
    assert files.group_id("staff") == 50
