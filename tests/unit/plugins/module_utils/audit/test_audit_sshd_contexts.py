"""sshd judged per connection: real `sshd -T -C` dumps of configurations whose Match blocks re-open what the
global settings close (fixtures/sshd_contexts/, captured by its capture.py with OpenSSH 9.2)."""

import ipaddress
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.audit import checks, report, sshd_contexts
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import effective

CASES = Path(__file__).parent / "fixtures" / "sshd_contexts"
MAIN = "/etc/ssh/sshd_config"
SSHD_CONTROLS = (
    "ssh_password_login",
    "ssh_root_login",
    "ssh_access_list",
    "ssh_max_auth_tries",
    "ssh_forwarding",
)


def case_facts(name, *, asked=True):
    """The facts the module gathers on the case's host, sshd's answers read from the captured dumps."""
    here = CASES / name
    case = json.loads((here / "case.json").read_text())
    index = json.loads((here / "index.json").read_text())
    base = (here / "T.txt").read_text()
    blocks = effective.match_blocks((here / "sshd_config").read_text(), MAIN)
    eff = effective.parse(base)
    contexts, unjudged = sshd_contexts.plan(
        blocks,
        admins=case["admins"],
        accounts=case["accounts"],
        admin_networks=[ipaddress.ip_network(n) for n in case["admin_networks"]],
        ports=eff.lines("port"),
        listen=sshd_contexts.listen_addresses(eff),
    )
    # The connections planned are the ones whose dumps were captured (capture.py plans them the same way).
    assert [sshd_contexts.spec_text(c.spec) for c in contexts] == list(index)
    facts = {"sshd": base}
    if asked:
        facts["sshd_blocks"], facts["sshd_unjudged"] = blocks, unjudged
        facts["sshd_contexts"] = [
            {
                "context": c,
                "output": (here / index[sshd_contexts.spec_text(c.spec)]).read_text(),
                "error": None,
            }
            for c in contexts
        ]
    return facts


def by_id(findings):
    return {f["id"]: f for f in findings}


def test_the_hostile_host_fails_root_passwords_and_forwarding_naming_the_connection():
    found = by_id(checks.sshd_findings(case_facts("hostile")))
    assert found["ssh_root_login"]["status"] == "fail"
    assert found["ssh_root_login"]["evidence"] == (
        "permitrootlogin no; "
        f"permitrootlogin yes for root from 203.0.113.7 (Match User root at {MAIN} line 124)"
    )
    assert found["ssh_password_login"]["status"] == "fail"
    assert found["ssh_password_login"]["evidence"] == (
        "passwordauthentication no, kbdinteractiveauthentication no, permitemptypasswords no; "
        "passwordauthentication yes for root from 203.0.113.7, admin deploy from 10.20.0.1, "
        f"address 203.0.113.7 (Match Address * at {MAIN} line 126)"
    )
    assert found["ssh_forwarding"]["status"] == "fail"
    assert found["ssh_forwarding"]["evidence"] == (
        "all off; allowtcpforwarding yes for root from 203.0.113.7, admin deploy from 10.20.0.1, "
        f"address 203.0.113.7 (Match Address * at {MAIN} line 126)"
    )
    assert found["ssh_max_auth_tries"]["status"] == "pass"
    assert found["ssh_access_list"]["status"] == "pass"


def test_the_global_dump_alone_is_what_fooled_the_audit():
    """The same host judged on `sshd -T` only, as the audit did before: every control passes."""
    found = by_id(checks.sshd_findings(case_facts("hostile", asked=False)))
    assert {fid: found[fid]["status"] for fid in SSHD_CONTROLS} == dict.fromkeys(SSHD_CONTROLS, "pass")


def test_the_score_drops_by_the_weight_of_the_reopened_controls():
    fooled = [f for f in checks.sshd_findings(case_facts("hostile", asked=False)) if f["id"] in SSHD_CONTROLS]
    judged = [f for f in checks.sshd_findings(case_facts("hostile")) if f["id"] in SSHD_CONTROLS]
    reopened = {"ssh_root_login", "ssh_password_login", "ssh_forwarding"}
    assert {f["id"] for f in judged if f["status"] == "fail"} == reopened
    weights = sum(report.WEIGHTS[f["severity"]] for f in judged if f["id"] in reopened)
    total = sum(report.WEIGHTS[f["severity"]] for f in judged)
    assert report.score(fooled) == 100
    assert report.score(judged) == round(100 * (total - weights) / total)


def test_group_members_negated_networks_and_host_names_are_asked_about_and_a_dead_block_is_not():
    facts = case_facts("tricky")
    found = by_id(checks.sshd_findings(facts))
    assert found["ssh_max_auth_tries"]["evidence"] == (
        "maxauthtries 3; maxauthtries 10 for address 203.0.113.7, _apt from 203.0.113.7 "
        f"(Match Group nogroup at {MAIN} line 124)"
    )
    assert found["ssh_forwarding"]["evidence"] == (
        "all off; x11forwarding yes for deploy from 10.0.0.1 "
        f"(Match User *,!root Address 10.0.0.0/8,!10.20.0.0/16 at {MAIN} line 126); "
        "allowagentforwarding yes for root from 203.0.113.7 (host probe.example.org) "
        f"(Match Host *.example.org at {MAIN} line 128)"
    )
    # `Match User !root` selects nobody in sshd (negations alone never match): nothing to judge.
    assert found["ssh_password_login"]["status"] == "pass"
    (dead,) = facts["sshd_unjudged"]
    assert dead.never and dead.block.line == 130
    assert dead.reason == "User !root has only negated patterns, which sshd never matches"


def test_a_match_localport_block_is_asked_about_on_its_port():
    found = by_id(checks.sshd_findings(case_facts("localport")))
    assert found["ssh_forwarding"]["evidence"] == (
        "all off; permittunnel yes for root from 203.0.113.7 to 0.0.0.0 port 2222 "
        f"(Match LocalPort 2222 at {MAIN} line 124)"
    )
    case = json.loads((CASES / "localport" / "case.json").read_text())
    assert "'lport' not in connection test specification" in case["plain_error"]


def test_a_connection_sshd_cannot_evaluate_fails_every_control_it_bears_on():
    facts = case_facts("hostile")
    facts["sshd_contexts"][0].update(output=None, error="Invalid test mode specification user=")
    found = by_id(checks.sshd_findings(facts))
    assert (
        "cannot evaluate root from 203.0.113.7: Invalid test mode specification user="
        in (found["ssh_max_auth_tries"]["evidence"])
    )
    assert found["ssh_max_auth_tries"]["status"] == "fail"


def test_a_block_no_connection_can_be_built_for_is_judged_on_its_own_settings():
    base = (CASES / "hostile" / "T.txt").read_text()
    text = (
        "Match Group nosuchgroup\n    PasswordAuthentication yes\n    MaxAuthTries 2\n"
        "Match SessionType shell\n    X11Forwarding yes\n"
    )
    blocks = effective.match_blocks(text, "/etc/ssh/sshd_config.d/50-other.conf")
    contexts, unjudged = sshd_contexts.plan(blocks, admins=[], accounts={"root": ["root"]})
    assert [u.reason for u in unjudged] == [
        "no account is in a group that Group nosuchgroup selects",
        "the audit cannot build a connection for criterion 'sessiontype'",
    ]
    assert len(contexts) == 2  # root's and anyone's from outside
    found = by_id(checks.sshd_findings({"sshd": base, "sshd_blocks": blocks, "sshd_unjudged": unjudged}))
    assert found["ssh_password_login"]["evidence"] == (
        "passwordauthentication no, kbdinteractiveauthentication no, permitemptypasswords no; "
        "passwordauthentication yes in Match Group nosuchgroup at /etc/ssh/sshd_config.d/50-other.conf "
        "line 1, which the audit could not ask sshd about (no account is in a group that Group nosuchgroup "
        "selects)"
    )
    assert found["ssh_forwarding"]["status"] == "fail"
    assert "x11forwarding yes in Match sessiontype shell at" in found["ssh_forwarding"]["evidence"]
    assert found["ssh_max_auth_tries"]["status"] == "pass"  # 2 is stricter, not weak


@pytest.mark.parametrize(
    ("text", "patterns", "expected"),
    [
        ("root", "root", 1),
        ("root", "*,!root", -1),
        ("alice", "*,!root", 1),
        ("alice", "!root", 0),  # negations alone never match
        ("alice", "a?ice", 1),
        ("alice", "[a]lice", 0),  # no character classes in OpenSSH's patterns
        ("Alice", "alice", 0),
    ],
)
def test_match_list_as_openssh(text, patterns, expected):
    assert sshd_contexts.match_list(text, patterns) == expected


@pytest.mark.parametrize(
    ("address", "patterns", "expected"),
    [
        ("10.1.2.3", "10.0.0.0/8", 1),
        ("10.20.0.5", "10.0.0.0/8,!10.20.0.0/16", -1),
        ("10.1.2.3", "10.1.*", 1),
        ("2001:db8::7", "2001:db8::/32", 1),
        ("203.0.113.7", "*", 1),
        ("203.0.113.7", "10.0.0.1/8", 0),  # host bits set: sshd refuses the entry
        ("not-an-address", "*", 0),
    ],
)
def test_addr_match_as_openssh(address, patterns, expected):
    assert sshd_contexts.addr_match(address, patterns) == expected


def test_the_outside_address_is_in_no_admin_network():
    nets = [ipaddress.ip_network("203.0.113.0/24")]
    assert sshd_contexts.outside_address([]) == "203.0.113.7"
    assert sshd_contexts.outside_address(nets) == "198.51.100.7"
    assert sshd_contexts.admin_address(nets) == "203.0.113.1"
    assert sshd_contexts.admin_address([ipaddress.ip_network("10.9.8.7/32")]) == "10.9.8.7"


# --- the choice agrees with sshd itself --------------------------------------------------------------

NAMES = st.sampled_from(["root", "deploy", "nobody", "*", "d*", "?oot", "no*dy", "x"])
USERS = st.lists(st.tuples(st.booleans(), NAMES), min_size=1, max_size=3).map(
    lambda items: ",".join(("!" if negated else "") + name for negated, name in items)
)
ENTRIES = st.sampled_from(
    ["10.0.0.0/8", "10.20.0.0/16", "10.20.0.1", "203.0.113.0/24", "*", "10.*", "192.0.2.7", "2001:db8::/32"]
)
ADDRESSES = st.lists(st.tuples(st.booleans(), ENTRIES), min_size=1, max_size=3).map(
    lambda items: ",".join(("!" if negated else "") + entry for negated, entry in items)
)
SSHD = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if os.path.exists(p)), None)


@pytest.mark.skipif(
    SSHD is None or os.geteuid() != 0, reason="needs sshd, run as root (it reads the host keys)"
)
@settings(max_examples=60, deadline=None)
@given(users=USERS, addresses=ADDRESSES)
@example(users="*,!root", addresses="10.0.0.0/8,!10.20.0.0/16")
@example(users="!root", addresses="*")
@example(users="root", addresses="!203.0.113.0/24,*")
def test_the_connection_chosen_for_a_block_is_one_sshd_applies_it_to(tmp_path_factory, users, addresses):
    config = tmp_path_factory.mktemp("sshd") / "sshd_config"
    config.write_text(f"MaxAuthTries 3\nMatch User {users} Address {addresses}\n    MaxAuthTries 7\n")
    (block,) = effective.match_blocks(config.read_text(), str(config))
    accounts = {"root": ["root"], "nobody": ["nogroup"]}
    contexts, unjudged = sshd_contexts.plan([block], admins=["deploy"], accounts=accounts)
    chosen = [c for c in contexts if c.blocks == [0]]
    if unjudged:
        (item,) = unjudged
        assert item.never or "satisfies" in item.reason, item
        return
    assert chosen, contexts
    for context in contexts:
        done = subprocess.run(
            [SSHD, "-T", "-f", str(config), "-C", sshd_contexts.spec_text(context.spec)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        # The audit's reading of which blocks apply is sshd's own.
        assert ("maxauthtries 7" in done.stdout.splitlines()) == (context.blocks == [0]), context
