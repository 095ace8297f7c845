"""The account database on the host (passwd and group, NSS included): the one place the modules read it.

Entries come back as plain named tuples, so the pure layer and unit tests can build them without pwd/grp.
"""

import collections
import grp
import os
import pwd

Account = collections.namedtuple("Account", "name uid gid home shell")
Group = collections.namedtuple("Group", "name gid members")


def _account(entry):
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, entry.pw_shell)


def _group(entry):
    return Group(entry.gr_name, entry.gr_gid, list(entry.gr_mem))


def _find(lookup, key, entry):
    try:
        return entry(lookup(key))
    except KeyError:
        return None


def user(name):
    """The Account of a user name, or None when the host has no such user."""
    return _find(pwd.getpwnam, name, _account)


def user_by_uid(uid):
    """The Account of a uid, or None when no account has it."""
    return _find(pwd.getpwuid, uid, _account)


def users():
    """Every Account the host knows, in the database's order."""
    return [_account(entry) for entry in pwd.getpwall()]


def group(name):
    """The Group of a group name, or None when the host has no such group."""
    return _find(grp.getgrnam, name, _group)


def group_by_gid(gid):
    """The Group of a gid, or None when no group has it."""
    return _find(grp.getgrgid, gid, _group)


def groups():
    """Every Group the host knows, in the database's order."""
    return [_group(entry) for entry in grp.getgrall()]


def group_names_of(account):
    """The names of every group the account is in, as the kernel would give it at login (its primary
    group and the groups listing it); a gid with no name is given as the number."""
    names = []
    for gid in os.getgrouplist(account.name, account.gid):
        found = group_by_gid(gid)
        names.append(found.name if found else str(gid))
    return names


def invoking_user():
    """The user who asked for this run: the one sudo names (become), else the one this process runs as."""
    name = os.environ.get("SUDO_USER")
    if name:
        return name
    found = user_by_uid(os.getuid())
    return found.name if found else str(os.getuid())
