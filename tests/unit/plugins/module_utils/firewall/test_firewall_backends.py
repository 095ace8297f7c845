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


def test_nftables_rollback_puts_back_the_purged_iptables_nft_tables_unless_they_are_there():
    host = persistent_host()
    backend = host.backend(backends.Nftables)
    o = opts()
    plan = backend.plan(policy(), o)
    backend.snapshot(plan, o)
    assert plan.restore == [
        ("the previous table inet bulwark, and what the purge removed or changed (what others added since "
         "stays)", ["/bin/sh", "/var/lib/bulwark/firewall.rollback.sh"]),
    ]  # fmt: skip
    assert plan.snapshot["/var/lib/bulwark/firewall.rollback.ip-filter.save"] == IPT_SAVE
    # no owned table before: the restore deletes the one the apply created
    assert plan.snapshot["/var/lib/bulwark/firewall.rollback.nft"].endswith(
        "table inet bulwark {}\ndelete table inet bulwark\n"
    )
    script = plan.snapshot["/var/lib/bulwark/firewall.rollback.sh"]
    # gone: back whole; made anew by another owner (another handle): ours beside theirs; the same: left
    assert (
        'case "$(handle /usr/sbin/nft ip filter)" in\n'
        '  "") /usr/sbin/iptables-nft-restore /var/lib/bulwark/firewall.rollback.ip-filter.save ;;\n'
        "  1) ;;\n"
        "  *) /usr/sbin/iptables-nft-restore --noflush /var/lib/bulwark/firewall.rollback.ip-filter.save ;;\n"
        "esac\n"
    ) in script
    assert "  2) ;;" in script and "ip6tables-nft-restore --noflush" in script
    assert "delete table ip" not in script  # a table someone made anew is never replaced


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
    assert plan.snapshot["/var/lib/bulwark/firewall.rollback.table0.nft"] == "table ip filter {\n}\n"
    script = plan.snapshot["/var/lib/bulwark/firewall.rollback.sh"]
    assert (
        "{\n  cat /var/lib/bulwark/firewall.rollback.nft\n"
        "  /usr/sbin/nft list table ip filter >/dev/null 2>&1 || "
        "cat /var/lib/bulwark/firewall.rollback.table0.nft\n"
        "} | /usr/sbin/nft -f /dev/stdin\n"
    ) in script
    assert 'case "$(handle /usr/sbin/nft ip filter)"' not in script
    assert 'case "$(handle /usr/sbin/nft ip6 filter)"' in script


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
        ["/bin/sh", "/var/lib/bulwark/firewall.rollback.v4.sh"],
        ["/bin/sh", "/var/lib/bulwark/firewall.rollback.v6.sh"],
        # bw-admin-6 did not exist: the apply creates it, the rollback destroys it (bw-admin-4: swapped back)
        ["/usr/sbin/ipset", "restore", "-exist", "-file", "/var/lib/bulwark/firewall.rollback.ipset-created"],
    ]
    assert plan.snapshot["/var/lib/bulwark/firewall.rollback.ipset-created"] == "destroy bw-admin-6\n"
    # the built-in chains' policies as they were, in one transaction; none of our chains existed
    assert plan.snapshot["/var/lib/bulwark/firewall.rollback.v4.owned"] == (
        "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    )
    script = plan.snapshot["/var/lib/bulwark/firewall.rollback.v4.sh"]
    body = script.split("\nhandle() {")[1].split("\n", 1)[1]
    assert [line for line in body.splitlines() if line and not line.startswith("#")] == [
        "/usr/sbin/iptables-restore --noflush /var/lib/bulwark/firewall.rollback.v4.owned",
        "unjump /usr/sbin/iptables INPUT BULWARK-INPUT",
        "unjump /usr/sbin/iptables FORWARD BULWARK-FORWARD",
        "unjump /usr/sbin/iptables OUTPUT BULWARK-OUTPUT",
        # the purged rule, back unless it is there (once), after the first of its predecessors still there
        "readd /usr/sbin/iptables /usr/sbin/iptables-restore filter INPUT 1 "
        "'-p tcp -m tcp --dport 22 -j ACCEPT'",
        "unchain /usr/sbin/iptables BULWARK-INPUT",
        "unchain /usr/sbin/iptables BULWARK-FORWARD",
        "unchain /usr/sbin/iptables BULWARK-OUTPUT",
    ]
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


# A host whose iptables-nft filter table Docker shares: rules are purged one by one, the rollback puts back
# exactly those (iptables-nft-save's text of each, after its predecessors), and the INPUT policy.
SHARED = {
    "nftables": [
        {"table": {"family": "ip", "name": "filter", "handle": 3}},
        {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "type": "filter",
                   "hook": "input", "prio": 0, "policy": "drop"}},
        {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 2, "type": "filter",
                   "hook": "forward", "prio": 0, "policy": "accept"}},
        {"chain": {"family": "ip", "table": "filter", "name": "DOCKER", "handle": 3}},
        {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 7, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": {"prefix": {"addr": "198.51.100.0", "len": 24}}}}, {"accept": None}]}},
        {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 8, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 23}},
            {"drop": None}]}},
        {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 9, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": "203.0.113.9"}}, {"accept": None}]}},
        {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 10, "expr": [
            {"jump": {"target": "DOCKER"}}]}},
    ]
}  # fmt: skip
SHARED_SAVE = (
    "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n"
    "-A INPUT -s 198.51.100.0/24 -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 23 -j DROP\n"
    '-A INPUT -s 203.0.113.9/32 -m comment --comment "it\\\'s $(x)" -j ACCEPT\n-A FORWARD -j DOCKER\nCOMMIT\n'
)


def shared_host(save=SHARED_SAVE):
    return FakeHost({
        ("/usr/sbin/nft", "-j", "list", "ruleset"): __import__("json").dumps(SHARED),
        ("/usr/sbin/iptables-nft-save", "-t", "filter"): save,
    }, tools={**TOOLS, "iptables-nft": "/usr/sbin/iptables-nft"})  # fmt: skip


def test_nftables_rollback_puts_back_each_purged_rule_of_a_shared_table_and_its_policy():
    host = shared_host()
    backend = host.backend(backends.Nftables)
    o = opts()
    plan = backend.plan(policy(), o)
    assert plan.facts["purge"] == [
        "delete rule ip filter INPUT handle 7",
        "delete rule ip filter INPUT handle 9",
        "chain ip filter INPUT { policy accept; }",
    ]
    backend.snapshot(plan, o)
    script = plan.snapshot["/var/lib/bulwark/firewall.rollback.sh"]
    readd = "readd /usr/sbin/iptables-nft /usr/sbin/iptables-nft-restore filter INPUT"
    assert f"{readd} 1 '-s 198.51.100.0/24 -j ACCEPT'\n" in script
    # the rule's text as iptables-nft-save printed it, one shell word; its predecessors, nearest first
    assert (
        f"{readd} 1 '-s 203.0.113.9/32 -m comment --comment \"it\\'\"'\"'s $(x)\" -j ACCEPT' "
        "'-p tcp -m tcp --dport 23 -j DROP' '-s 198.51.100.0/24 -j ACCEPT'\n"
    ) in script
    assert script.endswith(
        "if /usr/sbin/nft list chain ip filter INPUT >/dev/null 2>&1; then "
        "/usr/sbin/nft 'chain ip filter INPUT { policy drop; }'; fi\n"
    )
    assert "-restore /" not in script and "delete table" not in script  # nothing of the table is replaced


def test_a_shared_table_iptables_nft_cannot_write_back_is_not_purged_by_rule():
    host = shared_host(save="# Table `filter' is incompatible, use 'nft' tool.\n")
    with pytest.raises(backends.BackendError) as exc:
        host.backend(backends.Nftables).plan(policy(), opts())
    assert str(exc.value).startswith("purge: table ip filter is shared with Docker or fail2ban")
    assert str(exc.value).endswith("set purge: false. Nothing was applied")
    # without the purge, nothing needs writing back (the guard then judges the foreign drop policy)
    with pytest.raises(guard.Refused, match="purge is false"):
        host.backend(backends.Nftables).plan(policy(), opts(purge=False))


def test_a_chain_that_changed_between_two_reads_is_refused():
    host = shared_host(save=SHARED_SAVE.replace("-A INPUT -p tcp -m tcp --dport 23 -j DROP\n", ""))
    with pytest.raises(backends.BackendError, match=r"chain ip filter INPUT changed while the firewall read"):
        host.backend(backends.Nftables).plan(policy(), opts())


@pytest.mark.parametrize("name", ["a b", "x\ndelete table inet bulwark", "t}", "1t"])
def test_a_foreign_name_nft_would_not_read_back_is_not_written_into_a_script(name):
    doc = {"nftables": [
        {"table": {"family": "inet", "name": name, "handle": 4}},
        {"chain": {"family": "inet", "table": name, "name": "c", "handle": 1, "type": "filter",
                   "hook": "input", "prio": 0, "policy": "accept"}},
    ]}  # fmt: skip
    host = FakeHost({("/usr/sbin/nft", "-j", "list", "ruleset"): __import__("json").dumps(doc)})
    with pytest.raises(backends.BackendError) as exc:
        host.backend(backends.Nftables).plan(policy(), opts())
    assert str(exc.value) == (
        f"purge: {f'table inet {name}'!r} has a name nft cannot read back as written, so the purge cannot "
        "name it: remove it by hand, or set purge: false. Nothing was applied"
    )
    # reported, not purged, it is fine
    assert host.backend(backends.Nftables).plan(policy(), opts(purge=False)).foreign
