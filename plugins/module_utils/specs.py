"""Argument specs shared by the modules that change what the controller's connection goes through
(firewall, sshd_config) and by commit_confirm: one name and one default for one concept."""

# Every change is applied with commit-confirm; this is the window (in seconds) to confirm it.
ROLLBACK_TIMEOUT = 60
CONCERNS = ("sshd", "firewall")  # who arms a change that commit_confirm confirms


# The controller's SSH connection as the host sees it (the fields of SSH_CONNECTION), one name each.
CONNECTION = {"controller_address": "str", "controller_local_address": "str", "controller_port": "int"}


def controller_connection(own_names=None):
    """The controller's connection; read from the session's SSH_CONNECTION when omitted. own_names: {shared
    name: this module's earlier name} (sshd_config's connecting_from, local_address, local_port, named in
    its messages), the shared name then accepted as its alias."""
    own_names = own_names or {}
    spec = {}
    for name, kind in CONNECTION.items():
        own = own_names.get(name, name)
        spec[own] = {"type": kind, **({"aliases": [name]} if own != name else {})}
    return spec


def commit_confirm_options():
    """The rollback window and the action plugin's reconnect-and-confirm (read on the controller by
    plugins/action/; the module ignores it)."""
    return {
        "rollback_timeout": {"type": "int", "default": ROLLBACK_TIMEOUT},
        "reconnect_and_confirm": {"type": "bool", "default": False},
    }


def guard():
    """The lockout guard's switch: off only for tests and emergencies (commit-confirm still applies)."""
    return {"guard": {"type": "bool", "default": True}}


def concern():
    """commit_confirm's one option: whose change to confirm."""
    return {"concern": {"type": "str", "required": True, "choices": list(CONCERNS)}}


def changing_the_connection(own_names=None):
    """What every module that can cut the controller off takes: its connection, the guard, commit-confirm."""
    return {**controller_connection(own_names), **guard(), **commit_confirm_options()}
