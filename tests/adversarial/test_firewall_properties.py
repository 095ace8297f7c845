"""Property tests of the firewall's validators and renderers, against the real parsers and the kernel.

For every value of an option the model takes (interfaces, comments, set names, addresses, ports, rates):
either the model refuses it with a PolicyError naming the option, or the policy renders into an nft script
that `nft -c -f` accepts and an iptables-restore script that `iptables-restore --test` accepts, and, loaded
for real, reads back as exactly the intended rules (the module's own canonical comparison: no extra line,
no extra statement, no missing one) with the value itself read back unchanged, one token.
Hostile values (quotes, newlines, command substitutions, `;`, `#`, backslashes, control and bidi
characters, unicode) are always among the examples.
"""

import ipaddress
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import (
    iptables,
    model,
    nftables,
)

# One namespace serves every example of a test (each example starts from an empty ruleset).
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ADMIN = ["192.0.2.0/24"]
HOSTILE = (
    '"',
    "'",
    "a\nb",
    "$(reboot)",
    "`id`",
    "x; drop",
    "..",
    "a b",
    "#x",
    "a\\b",
    "\x00",
    "\x1b[2J",
    "\u202egnp",
    "é",
    "{ }",
    "eth0\n",
    'x" accept comment "y',
    "x -j ACCEPT",
)


class Kernel:
    """A network namespace where candidates are checked by the tools and loaded for real."""

    def __init__(self, ns, scratch):
        self.ns = ns
        self.scratch = scratch

    def load(self, policy):
        """From an empty ruleset: the nft script checked and loaded, the ipsets and both iptables-restore
        scripts tested and loaded, in one shell run (one namespace entry, for speed). Each is read back as
        exactly the candidate. Returns (the nft rules as JSON, {family: iptables-save -t filter})."""
        paths = {}
        for name, text in (
            ("nft", nftables.render(policy)),
            ("ipset", iptables.ipset_script(policy)),
            ("v4", iptables.restore_script(policy, 4)),
            ("v6", iptables.restore_script(policy, 6)),
        ):
            paths[name] = self.scratch / f"candidate.{name}"
            paths[name].write_text(text)
        out = self.ns.run([
            "sh", "-c",
            "set -e; nft flush ruleset; ipset destroy; "
            'nft -c -f "$1"; nft -f "$1"; nft -j list table inet bulwark; echo @@; '
            'ipset restore -exist -file "$2"; '
            'iptables-restore --test --noflush "$3"; iptables-restore --noflush "$3"; '
            "iptables-save -t filter; echo @@; "
            'ip6tables-restore --test --noflush "$4"; ip6tables-restore --noflush "$4"; '
            "ip6tables-save -t filter",
            "sh", str(paths["nft"]), str(paths["ipset"]), str(paths["v4"]), str(paths["v6"]),
        ]).stdout  # fmt: skip
        doc, save4, save6 = out.split("@@\n")
        doc = json.loads(doc)
        live = nftables.read_live(doc)
        assert nftables.live_canonical(live, nftables.known_ids(policy)) == nftables.canonical(policy)
        saved = {4: save4, 6: save6}
        for family in (4, 6):
            live = iptables.parse_save(saved[family])
            known = iptables.known_ids(policy, family)
            assert iptables.live_canonical(live, known, family) == iptables.canonical(policy, family)
        return [item["rule"] for item in doc["nftables"] if "rule" in item], saved


@pytest.fixture
def kernel(netns, tmp_path):
    return Kernel(netns(), tmp_path)


def accepted(options, option):
    """The policy, or None when the model refuses the value naming the option."""
    try:
        return model.normalise({"admin_networks": ADMIN, **options})
    except model.PolicyError as exc:
        assert str(exc).startswith(option), (str(exc), options)
        return None


def and_hostile(value, first):
    """The value; with the test's first example, every hostile value after it too (once per test)."""
    return (value, *HOSTILE) if value == first else (value,)


def restore_words(line):
    """A line of iptables-save output split as iptables-restore splits it (double quotes, backslash)."""
    words, word, quoted, escaped, started = [], [], False, False, False
    for char in line:
        if escaped:
            word.append(char)
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted, started = not quoted, True
        elif char == " " and not quoted:
            if word or started:
                words.append("".join(word))
            word, started = [], False
        else:
            word.append(char)
    if word or started:
        words.append("".join(word))
    return words


def operator_rule(rules, line):
    """The nft rule a rendered Line became (found by its id)."""
    found = [r for r in rules if r.get("comment", "").split(" ")[0] == line.id]
    assert len(found) == 1, (line.id, rules)
    return found[0]


def saved_rule(saved, line):
    """The words of the iptables-save rule a rendered Line became (found by its id)."""
    found = [
        restore_words(raw)
        for raw in saved.splitlines()
        if raw.startswith("-A ") and f'--comment "{line.id}' in raw
    ]
    assert len(found) == 1, (line.id, saved)
    return found[0]


def after(words, flag):
    assert words.count(flag) == 1, words
    return words[words.index(flag) + 1]


interfaces = st.one_of(
    st.text(max_size=18),
    st.from_regex(r"[A-Za-z0-9_.@:+*-]{1,17}", fullmatch=True),
)


@SETTINGS
@given(value=interfaces)
@example("eth0")
@example("va*")
@example("v+")
@example("br-*")
@example("eth0.100")
@example("abcdefghijklmno")
@example("abcdefghijklmn*")
@example("abcdefghijklmno*")
@example("*")
@example("-j")
@example(".")
@example("eth0:1")
@example("w@t")
@example("eth*0")
@example("eth\\*")
@example("")
def test_an_interface_the_model_accepts_is_one_token_in_every_backend(kernel, value):
    for value_ in and_hostile(value, "eth0"):
        rule = {"port": 8080, "interface": value_, "comment": "probe"}
        policy = accepted({"rules": [rule]}, "rules[0].interface: ")
        docker = accepted({"docker": True, "docker_interfaces": [value_]}, "docker_interfaces[0]: ")
        assert (policy is None) == (docker is None)
        if policy is None:
            continue
        [line] = nftables.rule_lines(0, policy.rules[0])
        rules, saved = kernel.load(policy)
        iifname = {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": value_}}
        assert iifname in operator_rule(rules, line)["expr"]
        for family in (4, 6):
            [ipt_line] = iptables.rule_lines(0, policy.rules[0], family)
            wildcard = value_[:-1] + "+" if value_.endswith("*") else value_
            assert after(saved_rule(saved[family], ipt_line), "-i") == wildcard
        kernel.load(docker)  # Docker's bridges, in the forward chain of both backends


comments = st.text(max_size=120)


@SETTINGS
@given(value=comments)
@example("an app's ports")
@example("x" * 114)
@example("é" * 57)
@example("é" * 58)
@example("$(reboot) `id` ; # { } * + @ ..")
@example("tab\there")
@example("  spaces  ")
def test_a_comment_the_model_accepts_reads_back_unchanged_in_every_backend(kernel, value):
    for value_ in and_hostile(value, "an app's ports"):
        policy = accepted({"rules": [{"port": 8080, "comment": value_}]}, "rules[0].comment")
        if policy is None:
            continue
        [line] = nftables.rule_lines(0, policy.rules[0])
        rules, saved = kernel.load(policy)
        assert operator_rule(rules, line)["comment"] == f"{line.id} {value_}".strip()
        for family in (4, 6):
            [ipt_line] = iptables.rule_lines(0, policy.rules[0], family)
            assert (
                after(saved_rule(saved[family], ipt_line), "--comment") == f"{ipt_line.id} {value_}".strip()
            )


@SETTINGS
@given(name=st.one_of(st.text(max_size=26), st.from_regex(r"[a-z][a-z0-9_]{0,25}", fullmatch=True)))
@example("office")
@example("rl0")
@example("rl1")
@example("rlssh")
@example("admin")
@example("a" * 24)
@example("a" * 25)
@example("ip")
@example("counter")
@example("Office")
@example("of-fice")
def test_a_set_name_the_model_accepts_is_one_set_in_every_backend(kernel, name):
    for name_ in and_hostile(name, "office"):
        options = {
            "sets": {name_: ["198.51.100.0/24", "2001:db8::/32"]},
            # a per-source rate limit and open SSH: the sets nft keeps their meters in sit beside it
            "rules": [{"port": 8080, "sources": [f"@{name_}"], "rate_limit": "10/minute"}],
            "ssh_restricted": False,
        }
        policy = accepted(options, (f"sets.{name_}: ", f"sets.{name_!r}: "))
        if policy is None:
            continue
        _rules, saved = kernel.load(policy)
        for family in (4, 6):
            rendered = iptables.rule_lines(0, policy.rules[0], family)
            assert after(saved_rule(saved[family], rendered[-1]), "--match-set") == f"bw-{name_}-{family}"
        listed = set(kernel.ns.run(["ipset", "list", "-n"]).stdout.split())
        assert {f"bw-{name_}-4", f"bw-{name_}-6"} <= listed


def networks(version):
    bits = 32 if version == 4 else 128
    return st.builds(
        lambda addr, prefix: str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False)),
        st.ip_addresses(v=version),
        st.integers(0, bits),
    )


addresses = st.one_of(networks(4), networks(6), st.ip_addresses().map(str), st.text(max_size=45))


@SETTINGS
@given(value=addresses)
@example("192.0.2.0/24")
@example("0.0.0.0/0")
@example("::/0")
@example("::ffff:192.0.2.1")
@example("fe80::1%eth0")
@example("10.0.0.1/8")
@example(" 192.0.2.1 ")
@example("192.0.2.1/32\n")
@example("2001:db8::/32 accept")
def test_an_address_the_model_accepts_renders_in_every_backend(kernel, value):
    for value_ in and_hostile(value, "192.0.2.0/24"):
        options = {
            "rules": [{"port": 8080, "sources": [value_], "destinations": [value_]}],
            "sets": {"office": [value_]},
            "admin_networks": [*ADMIN, value_],
        }
        # named by whichever option meets it first: the admin networks are read first
        policy = accepted(options, ("admin_networks[1]: ", "sets.office[0]: ", "rules[0].sources[0]: "))
        if policy is None:
            continue
        kernel.load(policy)


ports = st.one_of(
    st.integers(-2, 70000),
    st.text(max_size=12),
    st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 70000), st.integers(0, 70000)),
    st.builds(lambda a, b: f"{a}:{b}", st.integers(0, 70000), st.integers(0, 70000)),
)


@SETTINGS
@given(value=ports, proto=st.sampled_from([None, "udp", ["tcp", "udp"]]))
@example("https", None)
@example("8000-8100", ["tcp", "udp"])
@example("22", "udp")
@example("0", None)
@example("65535", None)
@example("65536", None)
@example("22\n", None)
@example("22 ", None)
@example("²", None)
@example(True, None)
def test_a_port_the_model_accepts_renders_in_every_backend(kernel, value, proto):
    rule = {"port": value} if proto is None else {"port": value, "proto": proto}
    policy = accepted({"rules": [rule]}, "rules[0].")
    if policy is None:
        return
    kernel.load(policy)
    # and as a routed rule (Docker's published ports, matched by the port the client asked for)
    kernel.load(accepted({"rules": [{**rule, "direction": "routed"}]}, "rules[0]."))


rates = st.one_of(
    st.from_regex(r"[0-9]{1,8}/(second|minute|hour|day)", fullmatch=True),
    st.text(max_size=16),
)


@SETTINGS
@given(rate=rates, burst=st.one_of(st.none(), st.integers(-1, 200000)))
@example("10/minute", 5)
@example("1/day", 1)
@example("1/day", 2)
@example("2/day", 3)
@example("1/second", 86400)
@example("1/second", 86401)
@example("1000000/second", 100000)
@example("1000001/second", 1)
@example("9999999/second", 5)
@example("10/minute ", None)
@example("10 /minute", None)
def test_a_rate_the_model_accepts_renders_in_every_backend(kernel, rate, burst):
    rule = {"port": 8080, "rate_limit": rate, **({} if burst is None else {"burst": burst})}
    ssh = {"ssh_restricted": False, "ssh_rate_limit": rate, **({} if burst is None else {"ssh_burst": burst})}
    for policy in (
        accepted({"rules": [rule]}, "rules[0]."),
        accepted(ssh, ("ssh_rate_limit: ", "ssh_burst: ")),
    ):
        if policy is not None:
            kernel.load(policy)
