"""The backends' plans, read from fake host outputs: what is applied, what restores it, what is persisted."""

from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import backends, guard, hooks, model

FIXTURES = Path(__file__).parent / "fixtures"
PERSISTENT = (FIXTURES / "ruleset-iptables-persistent-bookworm.json").read_text()
IPT_SAVE = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n"
TOOLS = {
    "nft": "/usr/sbin/nft",
    "iptables-nft-save": "/usr/sbin/iptables-nft-save",
    "ip6tables-nft-save": "/usr/sbin/ip6tables-nft-save",
    "iptables-nft-restore": "/usr/sbin/iptables-nft-restore",
    "ip6tables-nft-restore": "/usr/sbin/ip6tables-nft-restore",
}


class FakeHost:
    def __init__(self, outputs, tools=None, files=None):
        self.outputs = outputs  # argv tuple -> stdout
        self.tools = TOOLS if tools is None else tools
        self.files = files or {}
        self.ran = []

    def run(self, argv):
        self.ran.append(list(argv))
        key = tuple(argv)
        if key in self.outputs:
            return 0, self.outputs[key], ""
        return 1, "", f"unexpected command {argv}"

    def backend(self, cls):
        return cls(self.run, self.tools.get, self.files.get)


def policy(**kw):
    return model.normalise({"admin_networks": ["172.30.2.1/32"], "services": [8080], **kw})


def persistent_host():
    return FakeHost({
        ("/usr/sbin/nft", "-j", "list", "ruleset"): PERSISTENT,
        ("/usr/sbin/iptables-nft-save", "-t", "filter"): IPT_SAVE,
        ("/usr/sbin/ip6tables-nft-save", "-t", "filter"): IPT_SAVE,
    })  # fmt: skip


def opts(purge=True, port=22):
    return backends.Options(
        purge, "/etc/bulwark/firewall.nft", "/var/lib/bulwark", hooks.packet("172.30.2.1", None, port)
    )


def test_nftables_purge_of_an_iptables_persistent_host_deletes_its_tables_in_the_same_transaction():
    host = persistent_host()
    backend = host.backend(backends.Nftables)
    plan = backend.plan(policy(), opts())
    assert plan.changed
    assert plan.facts["purge"] == ["delete table ip filter", "delete table ip6 filter"]
    [step] = plan.steps
    assert step.argv == ["/usr/sbin/nft", "-f", "/var/lib/bulwark/firewall.candidate.nft"]
    assert "delete table ip filter\ndelete table ip6 filter\ntable inet bulwark {" in step.text
    assert plan.checks[0].argv == ["/usr/sbin/nft", "-c", "-f", "/var/lib/bulwark/firewall.candidate.nft"]


def test_nftables_rollback_restores_the_purged_iptables_nft_tables_through_iptables_nft_restore():
    host = persistent_host()
    backend = host.backend(backends.Nftables)
    o = opts()
    plan = backend.plan(policy(), o)
    backend.snapshot(plan, o)
    assert plan.restore == [
        ("nft -f: the previous table inet bulwark and the foreign nftables tables",
         ["/usr/sbin/nft", "-f", "/var/lib/bulwark/firewall.rollback.nft"]),
        ("iptables-nft-restore: the foreign ip tables as they were",
         ["/usr/sbin/iptables-nft-restore", "/var/lib/bulwark/firewall.rollback.iptables"]),
        ("ip6tables-nft-restore: the foreign ip6 tables as they were",
         ["/usr/sbin/ip6tables-nft-restore", "/var/lib/bulwark/firewall.rollback.ip6tables"]),
    ]  # fmt: skip
    assert plan.snapshot["/var/lib/bulwark/firewall.rollback.iptables"] == IPT_SAVE
    # no owned table before: the restore deletes the one the apply created
    assert plan.snapshot["/var/lib/bulwark/firewall.rollback.nft"].endswith(
        "table inet bulwark {}\ndelete table inet bulwark\n"
    )


def test_nftables_boot_files_and_the_boot_unit_are_staged_for_the_confirmation():
    plan = persistent_host().backend(backends.Nftables).plan(policy(), opts())
    assert [f[0] for f in plan.boot["files"]] == ["/etc/bulwark/firewall.nft", "/etc/nftables.conf"]
    assert plan.boot["commands"] == [["systemctl", "enable", "nftables.service"]]


def test_without_purge_the_foreign_drop_policy_is_judged_and_refused_by_name():
    backend = persistent_host().backend(backends.Nftables)
    with pytest.raises(guard.Refused) as exc:
        backend.plan(policy(ssh_port=2222), opts(purge=False, port=2222))
    msg = str(exc.value)
    assert msg.startswith(
        "lockout guard: table ip filter chain INPUT (hook input, priority 0, policy drop) would drop"
    )
    assert "purge is false" in msg and msg.endswith("Nothing was applied")
    # where the foreign chain admits the controller (tcp/22), purge false is fine
    plan = persistent_host().backend(backends.Nftables).plan(policy(), opts(purge=False))
    assert plan.facts["purge"] == [] and len(plan.foreign) == 2


def test_an_incompatible_iptables_table_is_saved_with_nft_instead():
    host = persistent_host()
    host.outputs[("/usr/sbin/iptables-nft-save", "-t", "filter")] = (
        "# Table `filter' is incompatible, use 'nft' tool.\n"
    )
    host.outputs[("/usr/sbin/nft", "list", "table", "ip", "filter")] = "table ip filter {\n}\n"
    backend = host.backend(backends.Nftables)
    o = opts()
    plan = backend.plan(policy(), o)
    backend.snapshot(plan, o)
    assert (
        "table ip filter {}\ndelete table ip filter\ntable ip filter {\n}"
        in plan.snapshot["/var/lib/bulwark/firewall.rollback.nft"]
    )
    assert [w for w, _a in plan.restore][1:] == ["ip6tables-nft-restore: the foreign ip6 tables as they were"]


def test_a_fresh_host_without_nft_is_predicted():
    host = FakeHost({}, tools={})
    plan = host.backend(backends.Nftables).plan(policy(), opts())
    assert not plan.tools_installed and plan.changed and plan.checks == []
    assert host.ran == []


def test_a_state_that_cannot_be_read_names_the_command():
    host = FakeHost({})
    with pytest.raises(backends.BackendError, match=r"^nft -j list ruleset failed \(rc=1\)"):
        host.backend(backends.Nftables).plan(policy(), opts())


IPSET_SAVE = "create bw-admin-4 hash:net family inet hashsize 1024 maxelem 65536\nadd bw-admin-4 172.30.2.1\n"


def iptables_host():
    tools = {name: f"/usr/sbin/{name}" for name in ("iptables", "ip6tables", "ipset")}
    return FakeHost(
        {
            ("/usr/sbin/iptables", "-V"): "iptables v1.8.9 (nf_tables)",
            ("/usr/sbin/iptables-save", "-t", "filter"): IPT_SAVE,
            ("/usr/sbin/ip6tables-save", "-t", "filter"): IPT_SAVE,
            ("/usr/sbin/ipset", "save"): IPSET_SAVE,
        },
        tools=tools,
    )


def test_iptables_steps_restore_steps_and_boot_unit():
    host = iptables_host()
    backend = host.backend(backends.Iptables)
    o = opts()
    plan = backend.plan(policy(), o)
    assert plan.facts["variant"] == "nf_tables" and plan.changed
    assert [s.argv[0] for s in plan.steps] == [
        "/usr/sbin/ipset",
        "/usr/sbin/iptables-restore",
        "/usr/sbin/ip6tables-restore",
    ]
    # the live bw-admin-4 is swapped with, never re-created (create -exist fails on another maxelem)
    assert (
        "create bw-admin-4 " not in plan.steps[0].text
        and "swap bw-admin-4-n bw-admin-4" in plan.steps[0].text
    )
    assert [c.argv[1] for c in plan.checks] == ["--test", "--test"]
    backend.snapshot(plan, o)
    assert [argv for _what, argv in plan.restore] == [
        ["/usr/sbin/ipset", "restore", "-exist", "-file", "/var/lib/bulwark/firewall.rollback.ipset"],
        ["/usr/sbin/iptables-restore", "/var/lib/bulwark/firewall.rollback.v4"],
        ["/usr/sbin/ip6tables-restore", "/var/lib/bulwark/firewall.rollback.v6"],
    ]
    assert plan.snapshot["/var/lib/bulwark/firewall.rollback.v4"] == IPT_SAVE
    assert plan.boot["commands"] == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "bulwark-firewall.service"],
    ]


NETFILTER_PERSISTENT = ("systemctl", "is-enabled", "--quiet", "netfilter-persistent.service")


def test_the_purge_disables_netfilter_persistent_on_confirm_so_the_purged_rules_do_not_come_back_at_boot():
    host = persistent_host()
    host.outputs[NETFILTER_PERSISTENT] = ""
    plan = host.backend(backends.Nftables).plan(policy(), opts())
    assert plan.takeover == ["netfilter-persistent.service"]
    assert plan.boot["commands"] == [
        ["systemctl", "enable", "nftables.service"],
        ["systemctl", "disable", "netfilter-persistent.service"],
    ]
    assert plan.before.endswith("boot: netfilter-persistent.service enabled\n")
    assert plan.after.endswith(
        "boot: netfilter-persistent.service disabled (it would load the purged rules again)\n"
    )
    assert plan.facts["boot_disabled"] == ["netfilter-persistent.service"]


@pytest.mark.parametrize(("purge", "enabled"), [(False, True), (True, False)])
def test_without_purge_or_with_netfilter_persistent_disabled_its_boot_is_left_alone(purge, enabled):
    host = persistent_host()
    if enabled:
        host.outputs[NETFILTER_PERSISTENT] = ""
    plan = host.backend(backends.Nftables).plan(policy(), opts(purge=purge))
    assert plan.takeover == []
    assert plan.boot["commands"] == [["systemctl", "enable", "nftables.service"]]
    assert "netfilter-persistent" not in plan.after
