"""A source the firewall stops admitting loses the flows it had, with the real nft, iptables and conntrack.

Every backend admits `ct state established,related` before any allowlist, so a source removed from a set
keeps its flow for as long as it keeps sending (an overlay peer's keepalives every 25 s): the conntrack
entry never times out. A host namespace admits a UDP echo port and a TCP echo port from a set holding the
peer; the peer keeps talking; a run removes it from the set. Its entries must be gone from `conntrack -L`
right after the run, and its next packets dropped, not delivered. The controller (admitted to SSH by the
admin networks, and by a list that shrinks too) keeps its connection.
"""

import subprocess
import sys
import time

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import backends

HOST, PEER = "10.231.0.1", "10.231.0.2"
HOST_C, CONTROLLER = "10.232.0.1", "10.232.0.2"
UDP_PORT, TCP_PORT, SSH_PORT = 51820, 7000, 2222
BACKENDS = ("nftables", "iptables")

# A UDP echo server that appends each datagram to a file (what arrived, and when).
UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
with open(sys.argv[3], "a", buffering=1) as log:
    while True:
        data, peer = s.recvfrom(2048)
        log.write(data.decode() + "\\n")
        s.sendto(data, peer)
"""
# The peer: one UDP socket (one flow) sending every 0.2 s, as a WireGuard peer keeps its keepalives up.
UDP_SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 40000))
n = 0
while True:
    s.sendto(str(n).encode(), (sys.argv[2], int(sys.argv[3])))
    n += 1
    time.sleep(0.2)
"""
# A TCP echo server, one line at a time, for every connection (the host's side of an SSH-like session).
TCP_ECHO = """
import socketserver, sys
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer((sys.argv[1], int(sys.argv[2])), Echo).serve_forever()
"""
# A client that holds ONE connection: each line on stdin is sent, and the echo (or "timeout") printed.
TCP_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.settimeout(2.0)
for line in sys.stdin:
    c.sendall(line.encode())
    try:
        reply = c.recv(1024).decode().strip()
    except socket.timeout:
        reply = "timeout"
    print(reply or "closed", flush=True)
"""


def firewall_args(backend, peers, trusted=()):
    return {
        "backend": backend,
        "admin_networks": [CONTROLLER],
        "ssh_port": SSH_PORT,
        "sets": {"peers": list(peers), "trusted": list(trusted)},
        "rules": [
            {"port": UDP_PORT, "proto": "udp", "sources": ["@peers"], "comment": "wireguard"},
            {"port": TCP_PORT, "sources": ["@peers"], "comment": "a session"},
            {"proto": "any", "sources": ["@trusted"], "comment": "everything from the trusted"},
        ],
        "docker": "false",
        "controller_address": CONTROLLER,
        "controller_port": SSH_PORT,
        "rollback_timeout": 30,
    }


def received(path):
    return path.read_text().split() if path.exists() else []


def flows(host, source):
    listed = host.run(["conntrack", "-L", "-s", source], check=False)
    return [line for line in listed.stdout.splitlines() if f"src={source} " in line]


@pytest.fixture
def lab(netns, link, state_root, tmp_path):
    """(host, peer, controller, the UDP log, the TCP client in the peer, the controller's client)."""
    host, peer, controller = netns(), netns(), netns()
    link(host, peer)
    link(host, controller, "10.232.0.1/24", "10.232.0.2/24")
    log = tmp_path / "udp.log"
    procs = [
        host.popen([sys.executable, "-c", UDP_ECHO, HOST, str(UDP_PORT), str(log)]),
        host.popen([sys.executable, "-c", TCP_ECHO, HOST, str(TCP_PORT)]),
        host.popen([sys.executable, "-c", TCP_ECHO, HOST_C, str(SSH_PORT)]),
    ]
    for _attempt in range(50):
        if peer.connects(HOST, TCP_PORT, timeout=0.2) and controller.connects(HOST_C, SSH_PORT, timeout=0.2):
            break
        time.sleep(0.1)
    yield host, peer, controller, log, procs
    for proc in procs:
        proc.kill()
        proc.wait()


def session(ns, address, port, procs):
    """A client holding one TCP connection from ns; .ask(text) -> the echo, "timeout" or "closed"."""
    proc = ns.popen(
        [sys.executable, "-c", TCP_CLIENT, address, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)

    def ask(text):
        proc.stdin.write(text + "\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    return ask


def apply(run_module, fake_systemd, host, args):
    run = run_module("firewall", args, ns=host, env=fake_systemd.env())
    assert run.rc == 0 and run.result["pending"], run
    return run


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_peer_removed_from_a_set_loses_its_udp_and_tcp_flows(lab, run_module, fake_systemd, backend):
    host, peer, controller, log, procs = lab
    apply(run_module, fake_systemd, host, firewall_args(backend, [PEER], trusted=[CONTROLLER]))

    # Admitted: the peer's datagrams arrive (and are answered: an established flow, as WireGuard's), its
    # TCP session echoes, and the controller's connection to SSH echoes.
    procs.append(peer.popen([sys.executable, "-c", UDP_SENDER, PEER, HOST, str(UDP_PORT)]))
    ask_peer = session(peer, HOST, TCP_PORT, procs)
    ask_controller = session(controller, HOST_C, SSH_PORT, procs)
    for _attempt in range(50):
        if len(received(log)) >= 5:
            break
        time.sleep(0.1)
    assert len(received(log)) >= 5, "the peer's datagrams must arrive while it is admitted"
    assert ask_peer("before") == "before"
    assert ask_controller("before") == "before"
    assert flows(host, PEER), "the peer's flows must be tracked before the change"

    # The peer leaves the set; the controller leaves the trusted set (still admitted by admin_networks).
    run = apply(run_module, fake_systemd, host, firewall_args(backend, []))

    # Right after the run, the peer has no tracked flow (its next datagrams are dropped before conntrack
    # confirms an entry) ...
    assert flows(host, PEER) == [], flows(host, PEER)
    # ... and what it keeps sending no longer arrives: at most what was in flight, then nothing for seconds.
    time.sleep(1.0)
    settled = len(received(log))
    time.sleep(3.0)
    assert len(received(log)) == settled, "the removed peer's datagrams must be dropped, not delivered"
    assert flows(host, PEER) == []
    # The peer's TCP session: the next segment is dropped (no echo), while the controller's goes on.
    assert ask_peer("after") != "after"
    assert ask_controller("after") == "after"
    # What the run reports, in the operator's words (the controller's address is in no call).
    assert run.result["flows_to_delete"] == {
        "sets.peers": [f"{PEER} udp port {UDP_PORT}", f"{PEER} tcp port {TCP_PORT}"]
    }, run.result
    assert run.result["flows_deleted"]["sets.peers"] >= 2, run.result
    assert "flows_failed" not in run.result, run.result
    conntrack_calls = [op for op in run.ops if "conntrack" in op]
    assert conntrack_calls and not any(CONTROLLER in op for op in conntrack_calls), conntrack_calls


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_that_shrinks_nothing_runs_no_conntrack(lab, run_module, fake_systemd, backend):
    host, _peer, _controller, _log, _procs = lab
    first = apply(run_module, fake_systemd, host, firewall_args(backend, [PEER]))
    assert not any("conntrack" in op for op in first.ops), first.ops
    # A change that only adds an address, and a run that changes nothing: no conntrack call at all.
    grown = apply(run_module, fake_systemd, host, firewall_args(backend, [PEER, "10.231.0.3"]))
    assert "flows_to_delete" not in grown.result and not any("conntrack" in op for op in grown.ops)
    again = run_module(
        "firewall", firewall_args(backend, [PEER, "10.231.0.3"]), ns=host, env=fake_systemd.env()
    )
    assert again.rc == 0 and not any("conntrack" in op for op in again.ops), again


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_mode_says_which_flows_it_would_delete(lab, run_module, fake_systemd, backend):
    host, _peer, _controller, _log, _procs = lab
    apply(run_module, fake_systemd, host, firewall_args(backend, ["10.231.0.0/28"]))
    check = run_module(
        "firewall",
        firewall_args(backend, ["10.231.0.0/29"]),
        ns=host,
        env=fake_systemd.env(),
        check_mode=True,
    )
    assert check.rc == 0 and check.result["changed"], check
    assert check.result["flows_to_delete"] == {
        "sets.peers": [f"10.231.0.8/29 udp port {UDP_PORT}", f"10.231.0.8/29 tcp port {TCP_PORT}"]
    }
    assert "conntrack: delete the flows of 10.231.0.8/29 udp port 51820" in check.result["diff"]["after"]
    assert not any("conntrack" in op for op in check.ops), check.ops


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_conntrack_failure_is_named_and_does_not_undo_the_change(lab, run_module, fake_systemd, backend):
    host, _peer, _controller, _log, _procs = lab
    apply(run_module, fake_systemd, host, firewall_args(backend, [PEER]))
    shrunk = apply(run_module, fake_systemd, host, firewall_args(backend, []))
    first = next(int(op.split("\t")[0]) for op in shrunk.ops if "conntrack" in op)
    apply(run_module, fake_systemd, host, firewall_args(backend, [PEER]))

    run = run_module(
        "firewall", firewall_args(backend, []), ns=host, env=fake_systemd.env(), fault=f"fail:{first}"
    )

    assert run.rc == 0 and run.result["pending"], run
    assert len(run.result["flows_failed"]) == 1, run.result
    assert run.result["flows_failed"][0].startswith("sets.peers: -D -f ipv4 -s 10.231.0.2/32 -p udp")
    assert "injected failure" in run.result["flows_failed"][0]
    warning = str(run.result.get("warnings"))
    assert "stays applied, it was not undone" in warning and "sets.peers" in warning, run.result
    # The change itself is live: the peer is no longer admitted.
    if backend == "nftables":
        listed = host.run(["nft", "list", "set", "inet", "bulwark", "peers_v4"]).stdout
    else:
        listed = host.run(["ipset", "list", "bw-peers-4"]).stdout
    assert PEER not in listed, listed


@pytest.mark.parametrize("backend", BACKENDS)
def test_after_the_host_rolls_a_change_back_the_next_runs_change_nothing(
    lab, run_module, fake_systemd, backend
):
    """A change the host rolled back, its rollback reported by the confirmation: the firewall is the policy
    again, so check mode and the next run predict and delete no flows and change nothing (the record still
    names the rolled-back change)."""
    host, _peer, _controller, _log, _procs = lab
    # Boot as a hardened host has it: the firewall's unit enabled, no competing unit (else every run here
    # would persist again and report a change).
    for unit in backends.COMPETING_BOOT_UNITS:
        fake_systemd.hook("is-enabled", unit, "exit 1")
    apply(run_module, fake_systemd, host, firewall_args(backend, [PEER]))
    assert run_module("commit_confirm", {"concern": "firewall"}, ns=host, env=fake_systemd.env()).rc == 0
    # A change that adds a source, never confirmed: the host's timer rolls it back.
    apply(run_module, fake_systemd, host, firewall_args(backend, [PEER, "10.231.0.3"]))
    fired = fake_systemd.fire("bulwark-rollback-firewall", host)
    assert fired.returncode == 0, fired
    # The confirmation finds the rollback and reports it (consuming the host's note of it), as the role's
    # confirm step does: the firewall module never sees that its recorded change was undone.
    confirm = run_module("commit_confirm", {"concern": "firewall"}, ns=host, env=fake_systemd.env())
    assert confirm.rc != 0 and "rolled" in confirm.result["msg"], confirm

    check = run_module(
        "firewall", firewall_args(backend, [PEER]), ns=host, env=fake_systemd.env(), check_mode=True
    )
    assert check.rc == 0 and not check.result["changed"], check.result
    assert "flows_to_delete" not in check.result, check.result
    after = run_module("firewall", firewall_args(backend, [PEER]), ns=host, env=fake_systemd.env())
    assert after.rc == 0 and not after.result["changed"], after.result
    assert not any("conntrack" in op for op in after.ops), after.ops
