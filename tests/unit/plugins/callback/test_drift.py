"""The drift callback names what each changed task touches, without secrets."""

from ansible_collections.bulwark.hardening.plugins.callback.drift import concern_of, what_changed


class Role:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class Task:
    def __init__(self, role):
        self._role = role


def test_concern_is_the_role_without_the_collection():
    assert concern_of(Task(Role("bulwark.hardening.firewall"))) == "firewall"
    assert concern_of(Task(None)) == "play"


JAIL = "/etc/fail2ban/jail.d/sshd.local (mode 0640)"


def test_what_changed_names_diff_headers_and_commands_not_contents():
    result = {
        "changed": True,
        "diff": [
            {"before_header": JAIL, "after_header": JAIL,
             "before": "secret-ish before", "after": "secret-ish after"},
        ],
        "commands": [["/usr/bin/fail2ban-client", "reload"]],
    }  # fmt: skip
    assert what_changed(result) == [
        "/etc/fail2ban/jail.d/sshd.local (mode 0640)",
        "/usr/bin/fail2ban-client reload",
    ]
    assert what_changed({"diff": {"after_header": "/etc/ssh/sshd_config.d/00-bulwark.conf"}}) == [
        "/etc/ssh/sshd_config.d/00-bulwark.conf"
    ]
    assert what_changed({"changed": True}) == []
