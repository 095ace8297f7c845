"""What the audit reads, turned into its facts' shape (pure), and Docker's settings read by host/docker."""

import collections

from ansible_collections.bulwark.hardening.plugins.module_utils.audit import sources
from ansible_collections.bulwark.hardening.plugins.module_utils.host import docker

User = collections.namedtuple("User", "name uid gid")
Group = collections.namedtuple("Group", "name gid members")


def test_groups_of_accounts_lists_the_primary_group_first_then_memberships():
    users = [User("alice", 1000, 1000), User("bob", 1001, 4242)]
    groups = [Group("alice", 1000, []), Group("sudo", 27, ["alice", "ghost"]), Group("ssh", 100, ["alice"])]
    assert sources.groups_of_accounts(users, groups) == {"alice": ["alice", "sudo", "ssh"], "bob": []}


def test_admin_groups_are_sudo_and_allowgroups():
    assert sources.admin_groups(None) == {"sudo"}
    assert sources.admin_groups("allowgroups sshusers wheel\n") == {"sudo", "sshusers", "wheel"}


def test_sshd_ports_are_the_numeric_port_lines():
    found = [
        ("/etc/ssh/sshd_config", "Port 22\nPort abc\n"),
        ("/etc/ssh/sshd_config.d/x.conf", "Port 2222\n"),
    ]
    assert sources.sshd_ports(found) == ["22", "2222"]


def test_json_that_does_not_parse_is_the_default():
    assert sources.json_or('{"a": 1}', {}) == {"a": 1}
    assert sources.json_or("{not json", {}) == {}
    assert sources.json_or("", None) is None
    assert sources.overlay_names('{"web": "KEY=", "odd": 3}') == {"KEY=": "web"}
    assert sources.overlay_names(None) == {}
    assert sources.sysctl_value("1\t 2\n") == "1 2"
    assert sources.sysctl_value(None) is None


class Runner:
    def __init__(self, tools, ps=(0, "web 0.0.0.0:80->80/tcp\n", "")):
        self.tools, self.ps, self.calls = tools, ps, []

    def which(self, name, **_kwargs):
        return f"/usr/bin/{name}" if name in self.tools else None

    def run(self, argv, **_kwargs):
        self.calls.append(argv)
        return self.ps


def test_docker_settings_without_the_daemon_are_none(monkeypatch):
    assert docker.settings(Runner(tools=())) is None


def test_docker_settings_read_daemon_json_and_the_published_ports(monkeypatch):
    monkeypatch.setattr(
        docker.files, "read", lambda path: '{"iptables": false}' if "daemon.json" in path else None
    )
    runner = Runner(tools=("dockerd", "docker"))
    assert docker.settings(runner) == ('{"iptables": false}', "web 0.0.0.0:80->80/tcp\n")
    assert runner.calls == [["/usr/bin/docker", "ps", "--format", "{{.Names}} {{.Ports}}"]]
    assert docker.settings(Runner(tools=("dockerd", "docker"), ps=(1, "x", "err")))[1] == ""
