"""IPv6 keeps working under the hardened firewall: a real DHCPv6 exchange through it.

On a firewalled host, a network namespace holds a DHCPv6 server (dnsmasq) on one end of a veth pair; the
host's main namespace, where the firewall applies, runs a DHCPv6 client (ISC dhclient -6) on the other end.
The server answers from its link-local address to the client's (udp 547 -> 546): a reply conntrack cannot
match to the client's request, which went to ff02::1:2. Proven on the nftables backend (Debian 12) and the
iptables backend (nf_tables variant, Debian 13).
"""

import shlex

import pytest

SERVER_NS = "bw-dhcp6"
PREFIX = "2001:db8:546::"
DNSMASQ_LOG = "/run/bw-dhcp6-dnsmasq.log"
LEASES = "/run/bw-dhcp6-client.leases"
CLIENT_PID = "/run/bw-dhcp6-client.pid"
RULE_COMMENT = "DHCPv6 client replies"

SETUP = f"""
set -e
export DEBIAN_FRONTEND=noninteractive
pkgs="dnsmasq-base isc-dhcp-client"
apt-get install -y -q --no-install-recommends $pkgs >/dev/null 2>&1 \\
  || {{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $pkgs >/dev/null; }}
ip netns del {SERVER_NS} 2>/dev/null || true
ip link del bw6c 2>/dev/null || true
ip netns add {SERVER_NS}
ip link add bw6c type veth peer name bw6s
ip link set bw6s netns {SERVER_NS}
ip -n {SERVER_NS} link set lo up
ip -n {SERVER_NS} link set bw6s up
ip -n {SERVER_NS} -6 addr add {PREFIX}1/64 dev bw6s
# Docker starts lab hosts with IPv6 off and /proc/sys read-only: switch it on for the client's end only,
# from a private mount namespace, so the host's /proc/sys stays as it was.
unshare -m sh -c 'mount -o remount,rw /proc/sys && sysctl -q -w net.ipv6.conf.bw6c.disable_ipv6=0'
ip link set bw6c up
for _ in $(seq 50); do
  ip -6 addr show dev bw6c scope link | grep -q 'inet6' && \\
    ! ip -6 addr show dev bw6c scope link | grep -q tentative && break
  sleep 0.2
done
: > {DNSMASQ_LOG}
ip netns exec {SERVER_NS} dnsmasq --port=0 --no-resolv --no-hosts --interface=bw6s --bind-interfaces \\
  --dhcp-range={PREFIX}100,{PREFIX}1ff,64,10m --dhcp-authoritative --log-dhcp \\
  --log-facility={DNSMASQ_LOG} --pid-file=/run/bw-dhcp6-dnsmasq.pid --dhcp-leasefile=/run/bw-dhcp6.leases
"""  # noqa: S608 (a shell script, not SQL)

TEARDOWN = f"""
dhclient -6 -x -lf {LEASES} -pf {CLIENT_PID} bw6c 2>/dev/null
kill "$(cat /run/bw-dhcp6-dnsmasq.pid 2>/dev/null)" 2>/dev/null
ip netns del {SERVER_NS} 2>/dev/null
ip link del bw6c 2>/dev/null
rm -f {LEASES} {CLIENT_PID} {DNSMASQ_LOG} /run/bw-dhcp6-dnsmasq.pid /run/bw-dhcp6.leases
true
"""


def bash(host, script):
    return host.run(f"bash -c {shlex.quote(script)}")


def lease(host, seconds):
    """One DHCPv6 attempt from the main namespace: (dhclient's exit code, the global address it got or "")."""
    bash(host, f"dhclient -6 -x -lf {LEASES} -pf {CLIENT_PID} bw6c 2>/dev/null; rm -f {LEASES}; "
               f"ip -6 addr flush dev bw6c scope global; : > {DNSMASQ_LOG}")  # fmt: skip
    rc = bash(host, f"timeout {seconds} dhclient -6 -1 -lf {LEASES} -pf {CLIENT_PID} bw6c").rc
    addr = host.run("ip -6 -o addr show dev bw6c scope global").stdout
    return rc, addr


def server_log(host):
    return host.run(f"cat {DNSMASQ_LOG}").stdout


class Backend:
    """Read, remove and put back the one rule that admits the DHCPv6 server's replies."""

    def __init__(self, host):
        self.host = host
        self.nft = host.backend.get_hostname() == "fw-bookworm"

    def ruleset(self):
        # Without counters: the exchange itself moves them.
        return self.host.run("nft list table inet bulwark" if self.nft else "ip6tables -S").stdout

    def input_policy_is_drop(self):
        if self.nft:
            return "type filter hook input priority filter; policy drop;" in self.ruleset()
        return self.host.run("ip6tables -S INPUT").stdout.startswith("-P INPUT DROP")

    def remove_rule(self):
        """Remove the rule; return what put_back needs to restore it exactly where it was."""
        if self.nft:
            listing = self.host.run("nft -a list chain inet bulwark input").stdout.splitlines()
            at = next(i for i, line in enumerate(listing) if RULE_COMMENT in line)
            text, _sep, handle = listing[at].strip().rpartition(" # handle ")
            after = listing[at - 1].rpartition(" # handle ")[2].strip()
            assert self.host.run(f"nft delete rule inet bulwark input handle {handle}").rc == 0
            return f"nft add rule inet bulwark input position {after} {shlex.quote(text)}"
        rules = [
            r for r in self.host.run("ip6tables -S BULWARK-INPUT").stdout.splitlines() if r.startswith("-A")
        ]
        at = next(i for i, r in enumerate(rules) if RULE_COMMENT in r)
        spec = rules[at].split(" ", 2)[2]
        assert bash(self.host, f"ip6tables -D BULWARK-INPUT {spec}").rc == 0
        return f"ip6tables -I BULWARK-INPUT {at + 1} {spec}"

    def put_back(self, command):
        assert bash(self.host, command).rc == 0


@pytest.fixture(params=["fw-bookworm", "fw-ipt-nft"])
def dhcp_host(request, lab_host):
    host = lab_host(request.param)
    setup = bash(host, SETUP)
    assert setup.rc == 0, setup.stderr
    yield host
    bash(host, TEARDOWN)


def test_dhcpv6_lease_through_the_hardened_firewall(dhcp_host):
    backend = Backend(dhcp_host)
    assert backend.input_policy_is_drop()
    hardened = backend.ruleset()
    assert RULE_COMMENT in hardened

    # The exchange works from the server's side: without the rule dnsmasq answers, and the client gets
    # nothing, because the firewall drops the answers (what the ruleset did before this rule existed).
    restore = backend.remove_rule()
    try:
        rc, addr = lease(dhcp_host, 12)
        log = server_log(dhcp_host)
        assert "DHCPSOLICIT(bw6s)" in log and "DHCPADVERTISE(bw6s)" in log, log
        assert rc != 0 and PREFIX not in addr
    finally:
        backend.put_back(restore)
    assert backend.ruleset() == hardened

    # With the ruleset the module wrote, the same exchange ends with a lease on the client's end.
    rc, addr = lease(dhcp_host, 20)
    assert rc == 0, server_log(dhcp_host)
    assert PREFIX in addr
    assert "DHCPREPLY(bw6s)" in server_log(dhcp_host)
