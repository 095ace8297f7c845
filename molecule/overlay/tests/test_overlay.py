"""The overlay with real traffic: a WireGuard mesh of ov1-ov3 (Debian 12 and 13), ov4 outside it.

The tests run in this order and change the membership: ov4 joins (group overlay_joined) as a spoke of
the hub ov1, then ov3 leaves (group overlay_left, run without ov3, which keeps its old configuration
and tries to come back). ov1, ov2 and ov4 run Docker; ov3 does not. Then, with an inventory laid out as
the README documents it (the overlay switched on by the group variables of a group named mesh), ov3 is
taken out through harden.yml, keeps trying with its old tunnel and is rejected, rejoins, and a member's key
is rotated through rotate_overlay_keys.yml.
"""

import ipaddress
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from lab_testing import ansible_env, reach

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
MEMBERS = ["ov1", "ov2", "ov3"]
UNDERLAY = {"ov1": "172.30.9.11", "ov2": "172.30.9.12", "ov3": "172.30.9.13", "ov4": "172.30.9.14"}
# Raw frames of one interface for a few seconds into a file (no tcpdump on the lab hosts).
CAPTURE = (
    "import socket,sys,time\n"
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.ntohs(3));s.bind((sys.argv[1],0));s.settimeout(0.3)\n"
    "end=time.time()+float(sys.argv[2]);out=open(sys.argv[3],'wb')\n"
    "while time.time()<end:\n"
    "  try: out.write(s.recv(65535))\n"
    "  except socket.timeout: pass\n"
)


def converge(*extra, group=None, limit=None, playbook=SCENARIO / "converge.yml"):
    """A playbook (the scenario's converge) on the inventory from the controller; the CompletedProcess."""
    env = ansible_env(
        ANSIBLE_PIPELINING="true", ANSIBLE_VAULT_PASSWORD_FILE=str(SCENARIO / "vault-password.txt")
    )
    argv = ["ansible-playbook", "-i", INVENTORY, str(playbook), *extra]
    if group:
        argv += ["-e", f"lab_overlay_group={group}"]
    if limit:
        argv += ["--limit", limit]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400, check=False)


def recap(done):
    """{host: {ok, changed, failed, ...}} from a playbook's PLAY RECAP."""
    out = {}
    for name, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", done.stdout, re.MULTILINE):
        out[name] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return out


@pytest.fixture
def hosts(lab_host):
    return {name: lab_host(name) for name in UNDERLAY}


def overlay_ip(host):
    out = host.run("ip -j -4 addr show dev wg0")
    assert out.rc == 0, out.stderr
    info = json.loads(out.stdout)[0]["addr_info"][0]
    return info["local"], info["prefixlen"]


def pings(source, address):
    """Three pings over the overlay; True if one is answered (the first may wait for a handshake)."""
    return source.run(f"ping -c 3 -i 0.3 -W 2 {address}").rc == 0


def peer_keys(host):
    out = host.run("wg show wg0 peers")
    assert out.rc == 0, out.stderr
    return set(out.stdout.split())


def public_key(host):
    return host.run("wg show wg0 public-key").stdout.strip()


def peer_set(host):
    """The underlay addresses in the firewall's overlay_peers set."""
    out = host.run("nft -j list set inet bulwark overlay_peers_v4")
    if out.rc != 0:
        return set()
    elems = next(o["set"].get("elem", []) for o in json.loads(out.stdout)["nftables"] if "set" in o)
    found = set()
    for e in elems:  # the firewall merges neighbours into prefixes and ranges
        if isinstance(e, str):
            found.add(e)
        elif "prefix" in e:
            net = ipaddress.ip_network(f"{e['prefix']['addr']}/{e['prefix']['len']}")
            found |= {str(a) for a in net}
        else:
            lo, hi = (ipaddress.ip_address(a) for a in e["range"])
            found |= {str(lo + i) for i in range(int(hi) - int(lo) + 1)}
    return found


def test_addresses_keys_and_file_modes(hosts):
    addresses = {name: overlay_ip(hosts[name]) for name in MEMBERS}
    assert addresses["ov1"] == ("10.99.0.11", 24)  # from the inventory
    assert len({a for a, _p in addresses.values()}) == 3
    assert all(a.startswith("10.99.0.") and p == 24 for a, p in addresses.values())
    for name in MEMBERS:
        h = hosts[name]
        assert h.file("/etc/bulwark/overlay").mode == 0o700
        assert h.file("/etc/bulwark/overlay/private.key").mode == 0o600
        assert h.file("/etc/wireguard/wg0.conf").mode == 0o600
        private = h.file("/etc/bulwark/overlay/private.key").content_string.strip()
        assert private not in h.file("/etc/wireguard/wg0.conf").content_string
        # The live key is the file's.
        assert h.run(f"echo {private} | wg pubkey").stdout.strip() == public_key(h)
    # ov4 is not a member: no interface, no WireGuard port.
    assert hosts["ov4"].run("ip link show wg0").rc != 0


def test_every_pair_pings_over_the_overlay(hosts):
    addresses = {name: overlay_ip(hosts[name])[0] for name in MEMBERS}
    for src in MEMBERS:
        for dst in MEMBERS:
            if src != dst:
                assert pings(hosts[src], addresses[dst]), f"{src} -> {dst} ({addresses[dst]})"


def audit_overlay(tmp_path, host):
    """audit.yml's overlay findings for host: {id: finding}."""
    done = converge(
        "-e", f"audit_output_dir={tmp_path}", limit=host, playbook=PROJECT / "playbooks" / "audit.yml"
    )
    assert (tmp_path / f"{host}.json").exists(), done.stdout[-3000:]
    findings = json.loads((tmp_path / f"{host}.json").read_text())["findings"]
    return {f["id"]: f for f in findings if f["id"].startswith("overlay_")}


def test_summary_and_audit_read_the_overlay(hosts, tmp_path):
    done = converge(limit="ov1", playbook=PROJECT / "playbooks" / "summary.yml")
    assert done.returncode == 0, done.stdout[-3000:]
    line = re.search(r"overlay: wg0 10\.99\.0\.11/24, last handshakes: (.*?)\"", done.stdout)
    assert line, done.stdout[-3000:]
    assert re.search(r"\bov2 \d+ s ago", line.group(1)) and re.search(r"\bov3 \d+ s ago", line.group(1))
    found = audit_overlay(tmp_path / "clean", "ov1")
    assert found["overlay_handshakes"]["status"] == "pass", found
    assert found["overlay_keys"]["status"] == "pass", found
    # A key made readable by hand fails its finding, naming the file; restored, it passes.
    ov2 = hosts["ov2"]
    assert ov2.run("chmod 0644 /etc/bulwark/overlay/private.key").rc == 0
    try:
        found = audit_overlay(tmp_path / "broken", "ov2")
        assert found["overlay_keys"]["status"] == "fail"
        assert "/etc/bulwark/overlay/private.key mode 0644" in found["overlay_keys"]["evidence"]
    finally:
        ov2.run("chmod 0600 /etc/bulwark/overlay/private.key")
    assert audit_overlay(tmp_path / "restored", "ov2")["overlay_keys"]["status"] == "pass"


def preshared_keys(host):
    """{peer public key: preshared key} of host's wg0."""
    out = host.run("wg show wg0 preshared-keys")
    assert out.rc == 0, out.stderr
    return dict(line.split("\t") for line in out.stdout.splitlines() if line.strip())


def test_every_pair_shares_its_own_preshared_key_which_never_shows(hosts):
    keys = {name: preshared_keys(hosts[name]) for name in MEMBERS}
    publics = {name: public_key(hosts[name]) for name in MEMBERS}
    pairs = {}
    for a in MEMBERS:
        for b in MEMBERS:
            if a < b:
                assert keys[a][publics[b]] == keys[b][publics[a]] != "(none)", (a, b)
                pairs[a, b] = keys[a][publics[b]]
    assert len(set(pairs.values())) == 3  # one key per pair
    for name in MEMBERS:
        h = hosts[name]
        assert h.file("/etc/bulwark/overlay/psk").mode == 0o700
        for other in MEMBERS:
            if other != name:
                assert h.file(f"/etc/bulwark/overlay/psk/{other}.psk").mode == 0o600
        assert not any(k in h.file("/etc/wireguard/wg0.conf").content_string for k in pairs.values())
    store = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "overlay-psk.vault"
    raw = store.read_text()
    assert raw.startswith("$ANSIBLE_VAULT;1.1;AES256")
    assert store.stat().st_mode & 0o777 == 0o600
    # Neither a run's output with a diff, nor the store in clear, holds a key.
    done = converge("--check", "--diff", "-v")
    assert done.returncode == 0, done.stdout[-3000:]
    assert not any(k in raw or k in done.stdout or k in done.stderr for k in pairs.values())


def test_only_declared_services_answer_over_the_overlay(hosts):
    ov1 = overlay_ip(hosts["ov1"])[0]
    # Both listeners answer on ov1 itself.
    assert reach(hosts["ov1"], "127.0.0.1", 7070)
    assert reach(hosts["ov1"], "127.0.0.1", 8080)
    assert reach(hosts["ov2"], ov1, 8080)
    assert not reach(hosts["ov2"], ov1, 7070)
    # The overlay's services are the overlay's: not open on the underlay.
    assert not reach(hosts["ov2"], UNDERLAY["ov1"], 8080)


def test_wireguard_port_admits_only_the_peers(hosts):
    assert peer_set(hosts["ov1"]) == {UNDERLAY["ov2"], UNDERLAY["ov3"]}
    assert peer_set(hosts["ov2"]) == {UNDERLAY["ov1"], UNDERLAY["ov3"]}
    assert peer_set(hosts["ov4"]) == set()


def test_tunnel_is_encrypted(hosts):
    ov2 = hosts["ov2"]
    underlay = json.loads(ov2.run("ip -j route show default").stdout)[0]["dev"]
    code = CAPTURE.replace('"', '\\"')
    for dev in (underlay, "wg0"):
        ov2.run(f'setsid -f python3 -c "{code}" {dev} 5 /run/capture-{dev} >/dev/null 2>&1')
    time.sleep(1)
    marker = "bulwark-overlay-marker-7f3a"
    target = overlay_ip(ov2)[0]
    hosts["ov1"].run(
        f"python3 -c \"import urllib.request as u; u.urlopen('http://{target}:8080/{marker}', timeout=3)\""
    )
    time.sleep(5)
    inside = ov2.file("/run/capture-wg0").content
    outside = ov2.file(f"/run/capture-{underlay}").content
    # The request crossed the tunnel in clear inside it, and the underlay carried WireGuard.
    assert marker.encode() in inside
    assert bytes([172, 30, 9, 11, 172, 30, 9, 12]) in outside
    assert marker.encode() not in outside


def docker_subnet(host):
    out = host.run("docker network inspect bulwark-overlay --format '{{json .IPAM.Config}}'")
    assert out.rc == 0, out.stderr
    return [c["Subnet"] for c in json.loads(out.stdout)]


def web_container(host, network="bulwark-overlay"):
    """A busybox web server (its page: the host's name) in a container on network; its address."""
    host.run("docker rm -f lab-web")
    started = host.run(
        f"docker run -d --name lab-web --network {network} lab-busybox /bin/busybox httpd -f -p 80 -h /www"
    )
    assert started.rc == 0, started.stderr
    out = host.run("docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' lab-web")
    return out.stdout.strip()


def fetch_from_container(host, address, network="bulwark-overlay"):
    """The page a new container on host gets from http://address/ (empty when nothing answers in 3 s).
    busybox nc, not wget: Debian 12's static wget crashes with a timeout option."""
    out = host.run(
        f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | docker run -i --rm --network {network} lab-busybox "
        f"/bin/busybox nc -w 3 {address} 80"
    ).stdout
    return out.split("\r\n\r\n", 1)[1].strip() if "\r\n\r\n" in out else ""


def test_containers_reach_each_other_over_the_mesh_and_nothing_else_reaches_them(hosts):
    ov1, ov2, ov4 = hosts["ov1"], hosts["ov2"], hosts["ov4"]
    subnets = {name: docker_subnet(hosts[name]) for name in ("ov1", "ov2")}
    assert all(len(s) == 1 and ipaddress.ip_network(s[0]).subnet_of(ipaddress.ip_network("10.100.0.0/16"))
               for s in subnets.values()), subnets  # fmt: skip
    assert subnets["ov1"] != subnets["ov2"]
    # ov3 runs no Docker: its subnet is still routed to it, for when it does.
    assert hosts["ov3"].run("command -v docker").rc != 0
    assert len(wgconf_routes(ov1)) == 2
    web1, web2 = web_container(ov1), web_container(ov2)
    assert ipaddress.ip_address(web1) in ipaddress.ip_network(subnets["ov1"][0])
    assert fetch_from_container(ov2, web1) == "ov1"
    assert fetch_from_container(ov1, web2) == "ov2"
    # A container on ov4 (outside the group), with a route to ov1's containers through ov1's underlay:
    # the packets arrive at ov1, but not from the mesh, and are dropped.
    web_container(ov4, network="bridge")
    assert fetch_from_container(ov4, UNDERLAY["ov1"], network="bridge") == ""  # its 80 is closed anyway
    assert ov4.run(f"ip route replace {subnets['ov1'][0]} via {UNDERLAY['ov1']}").rc == 0
    try:
        assert fetch_from_container(ov4, web1, network="bridge") == ""
        assert fetch_from_container(ov2, web1) == "ov1"  # while the mesh still does
    finally:
        ov4.run(f"ip route del {subnets['ov1'][0]}")


def wgconf_routes(host):
    """The networks routed via wg0 besides the overlay's own."""
    out = host.run("ip -j -4 route show dev wg0")
    return {r["dst"] for r in json.loads(out.stdout) if r.get("protocol") != "kernel"}


def test_the_wireguard_port_is_closed_to_a_host_outside_the_group(hosts):
    ov1, ov4 = hosts["ov1"], hosts["ov4"]
    # ov4 plays a peer: its own interface towards ov1, and ov1 given its key by hand. Only the firewall
    # stands between them.
    ov4.run("umask 077; wg genkey > /run/wgx.key")
    key = ov4.run("wg pubkey < /run/wgx.key").stdout.strip()
    setup = ov4.run(
        "wireguard-go wgx && ip address add 10.99.0.250/24 dev wgx && ip link set wgx up && "
        f"wg set wgx private-key /run/wgx.key peer {public_key(ov1)} endpoint {UNDERLAY['ov1']}:51820 "
        "allowed-ips 10.99.0.11/32"
    )
    assert setup.rc == 0, setup.stderr
    assert ov1.run(f"wg set wg0 peer {key} allowed-ips 10.99.0.250/32").rc == 0
    try:
        assert not pings(ov4, "10.99.0.11")
        assert ov1.run("wg show wg0 latest-handshakes").stdout.count(f"{key}\t0") == 1
        # The same, with ov4's address put in ov1's peer set by hand: the tunnel comes up.
        assert ov1.run(f"nft add element inet bulwark overlay_peers_v4 {{ {UNDERLAY['ov4']} }}").rc == 0
        assert pings(ov4, "10.99.0.11")
    finally:
        ov1.run(f"nft delete element inet bulwark overlay_peers_v4 {{ {UNDERLAY['ov4']} }}")
        ov1.run(f"wg set wg0 peer {key} remove")
        ov4.run("ip link del wgx; rm -f /run/wgx.key")
    assert peer_set(ov1) == {UNDERLAY["ov2"], UNDERLAY["ov3"]}


def host_state(host):
    """The overlay's file and the live ruleset, as a bad run must leave them."""
    return host.file("/etc/wireguard/wg0.conf").content_string, host.run("nft list ruleset").stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "overlay_address=10.98.0.5",
            "overlay_address: 10.98.0.5 is not a host address in bulwark_overlay_cidr",
        ),
        ("overlay_mtu=9500", "overlay_mtu: 9500 is not an MTU between 1280 and 9000"),
        (
            "bulwark_overlay_container_cidr=10.99.0.0/16",
            "bulwark_overlay_container_cidr: 10.99.0.0/16 overlaps",
        ),
        ("bulwark_overlay_hub=nobody", "bulwark_overlay_hub: 'nobody' is not a member of the group"),
        # Names are refused, not resolved (the controller's answer need not be the peers').
        (
            "overlay_endpoint=ov2.lab.example",
            "overlay_endpoint: 'ov2.lab.example' is a DNS name, not an IP address",
        ),
    ],
)
def test_bad_input_names_the_host_and_changes_nothing(hosts, extra, message):
    before = {name: host_state(hosts[name]) for name in MEMBERS}
    done = converge("-e", extra)
    assert done.returncode != 0
    assert message in done.stdout, done.stdout[-3000:]
    # Refused before the firewall and the overlay ran, on every host.
    assert all(r["changed"] == 0 for r in recap(done).values()), done.stdout[-3000:]
    assert {name: host_state(hosts[name]) for name in MEMBERS} == before


def test_limit_keeps_every_peer(hosts):
    before = peer_keys(hosts["ov2"])
    assert len(before) == 2
    done = converge(limit="ov2")
    assert done.returncode == 0, done.stdout[-3000:]
    assert recap(done)["ov2"]["changed"] == 0
    assert peer_keys(hosts["ov2"]) == before
    assert peer_set(hosts["ov2"]) == {UNDERLAY["ov1"], UNDERLAY["ov3"]}


def test_an_unknown_key_fails_naming_the_host(hosts):
    before = peer_keys(hosts["ov1"])
    # ov4 joins in the inventory, but this run does not reach it: its key is nowhere.
    done = converge(group="overlay_joined", limit="ov1")
    assert done.returncode != 0
    assert "ov4: its overlay public key is unknown" in done.stdout
    # Refused by the input check, before the firewall: no hole was opened for ov4, nothing changed.
    assert recap(done)["ov1"]["changed"] == 0
    assert peer_keys(hosts["ov1"]) == before
    assert UNDERLAY["ov4"] not in peer_set(hosts["ov1"])


def start_ping(host, address, name, count):
    """A continuous ping (every 0.2 s) in the background on host; its summary lands in /run/ping-<name>."""
    host.run(f"setsid -f sh -c 'exec ping -n -i 0.2 -c {count} -W 1 {address} > /run/ping-{name} 2>&1'")


def ping_summary(host, name, timeout=70):
    """(transmitted, received) once the background ping has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = host.file(f"/run/ping-{name}").content_string
        found = re.search(r"(\d+) packets transmitted, (\d+) received", text)
        if found:
            return int(found.group(1)), int(found.group(2))
        time.sleep(1)
    raise AssertionError(f"the ping {name} did not finish: {text[-300:]}")


def test_key_rotation_keeps_the_mesh_up(hosts):
    ov1, ov3 = hosts["ov1"], hosts["ov3"]
    old_key = public_key(ov3)
    start_ping(ov1, overlay_ip(hosts["ov2"])[0], "others", 250)
    start_ping(ov1, overlay_ip(ov3)[0], "rotating", 250)
    time.sleep(2)
    done = converge("-e", "rotate=ov3", playbook=PROJECT / "playbooks" / "rotate_overlay_keys.yml")
    assert done.returncode == 0, done.stdout[-3000:]
    new_key = public_key(ov3)
    assert new_key != old_key
    for name in ("ov1", "ov2"):
        assert new_key in peer_keys(hosts[name])
        assert old_key not in peer_keys(hosts[name])
    assert not ov3.file("/etc/bulwark/overlay/private.key.next").exists
    assert ov3.file("/etc/bulwark/overlay/private.key").mode == 0o600
    sent, received = ping_summary(ov1, "others")
    # No loss between the hosts that did not rotate.
    assert received == sent, f"ov1 -> ov2 lost {sent - received} of {sent}"
    sent, received = ping_summary(ov1, "rotating")
    # The rotating host is back within one handshake attempt (5 s, 25 pings at 0.2 s) and a bit.
    assert sent - received <= 30, f"ov1 -> ov3 lost {sent - received} of {sent}"
    assert pings(ov1, overlay_ip(ov3)[0])
    again = converge()
    assert all(r["changed"] == 0 for r in recap(again).values()), again.stdout[-3000:]


def test_check_mode_predicts_a_join_and_changes_nothing(hosts):
    keys, peers = peer_keys(hosts["ov1"]), peer_set(hosts["ov1"])
    done = converge("--check", "--diff", group="overlay_joined")
    assert done.returncode == 0, done.stdout[-3000:]
    changed = recap(done)
    assert changed["ov1"]["changed"] > 0
    assert changed["ov4"]["changed"] > 0
    # ov4's key would be generated by the run: the prediction says so instead of failing.
    assert "(unknown: generated by this run)" in done.stdout
    assert peer_keys(hosts["ov1"]) == keys
    assert peer_set(hosts["ov1"]) == peers
    assert not hosts["ov4"].file("/etc/bulwark/overlay/private.key").exists


def unit_started(host):
    return host.run("systemctl show -P ActiveEnterTimestampMonotonic wg-quick@wg0").stdout.strip()


def test_a_fourth_host_joins(hosts):
    started = unit_started(hosts["ov1"])
    done = converge(group="overlay_joined")
    assert done.returncode == 0, done.stdout[-3000:]
    ov4 = overlay_ip(hosts["ov4"])[0]
    for name in MEMBERS:
        assert pings(hosts[name], ov4), f"{name} -> ov4"
        assert pings(hosts["ov4"], overlay_ip(hosts[name])[0]), f"ov4 -> {name}"
    # Peers were added live (wg syncconf): ov1's interface was not restarted.
    assert unit_started(hosts["ov1"]) == started
    # ov4 is a spoke: its one peer is the hub, ov1, which routes for it (forwarding on, now and at boot)
    # and admits WireGuard from anywhere, since a spoke behind NAT has no address to admit.
    assert len(peer_keys(hosts["ov4"])) == 1
    assert public_key(hosts["ov1"]) in peer_keys(hosts["ov4"])
    assert hosts["ov1"].file("/etc/sysctl.d/60-bulwark-overlay.conf").contains("^net.ipv4.ip_forward = 1$")
    assert "udp dport 51820 accept" in hosts["ov1"].run("nft list chain inet bulwark input").stdout
    assert peer_set(hosts["ov1"]) == {UNDERLAY["ov2"], UNDERLAY["ov3"]}
    assert peer_set(hosts["ov2"]) == {UNDERLAY["ov1"], UNDERLAY["ov3"]}
    assert peer_set(hosts["ov4"]) == {UNDERLAY["ov1"]}
    # ov4's Docker network was made on joining, and the peers, synced live, route to it (wg syncconf
    # adds no routes, the module does): directly from the hub, through the hub from ov2.
    subnet = docker_subnet(hosts["ov4"])[0]
    assert subnet in wgconf_routes(hosts["ov1"])
    assert subnet in wgconf_routes(hosts["ov2"])
    web4 = web_container(hosts["ov4"])
    assert fetch_from_container(hosts["ov1"], web4) == "ov4"
    assert fetch_from_container(hosts["ov2"], web4) == "ov4"
    assert fetch_from_container(hosts["ov4"], web_container(hosts["ov2"])) == "ov2"
    again = converge(group="overlay_joined")
    assert again.returncode == 0
    assert all(r["changed"] == 0 for r in recap(again).values()), again.stdout[-3000:]


def test_a_rerun_of_harden_leaves_the_holes_in_place(hosts):
    names = ("ov1", "ov2", "ov3", "ov4")
    before = {n: (peer_set(hosts[n]), peer_keys(hosts[n])) for n in names}
    done = converge(
        "-e", "lab_overlay_group=overlay_joined", "--tags", "firewall,overlay",
        playbook=PROJECT / "playbooks" / "harden.yml",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert all(r["changed"] == 0 for r in recap(done).values()), done.stdout[-3000:]
    assert {n: (peer_set(hosts[n]), peer_keys(hosts[n])) for n in names} == before
    assert pings(hosts["ov2"], overlay_ip(hosts["ov4"])[0])


def test_a_host_leaves_and_is_rejected(hosts):
    ov3 = hosts["ov3"]
    ov3_key, ov3_ip = public_key(ov3), overlay_ip(ov3)[0]
    ov1_ip = overlay_ip(hosts["ov1"])[0]
    (ov3_subnet,) = wgconf_routes(hosts["ov1"]) - {docker_subnet(hosts[n])[0] for n in ("ov2", "ov4")}
    # ov3 is out of the group and of the run: it keeps its old configuration and tries to come back.
    done = converge(group="overlay_left", limit="targets:!ov3")
    assert done.returncode == 0, done.stdout[-3000:]
    for name in ("ov1", "ov2", "ov4"):
        assert ov3_key not in peer_keys(hosts[name])
        assert UNDERLAY["ov3"] not in peer_set(hosts[name])
        assert ov3_subnet not in wgconf_routes(hosts[name])
    # A peer still gets through; ov3 does not.
    assert pings(hosts["ov2"], ov1_ip)
    assert not pings(ov3, ov1_ip)
    # The firewall alone stops it: with ov3's peer entry put back on ov2 by hand, ov3's UDP is still
    # dropped before WireGuard sees it (on ov2: the hub, ov1, admits WireGuard from anywhere for its spoke).
    ov2, ov2_ip = hosts["ov2"], overlay_ip(hosts["ov2"])[0]
    assert ov2.run(f"wg set wg0 peer {ov3_key} allowed-ips {ov3_ip}/32").rc == 0
    try:
        assert not pings(ov3, ov2_ip)
        assert ov2.run("wg show wg0 latest-handshakes").stdout.count(f"{ov3_key}\t0") == 1
    finally:
        ov2.run(f"wg set wg0 peer {ov3_key} remove")
    again = converge(group="overlay_left", limit="targets:!ov3")
    assert all(r["changed"] == 0 for r in recap(again).values()), again.stdout[-3000:]


# --- the documented inventory layout: group_vars of the overlay's group (here named mesh) ---------------

MESH_SETTINGS = (
    "bulwark_overlay_cidr", "bulwark_overlay_container_cidr", "bulwark_overlay_services",
    "overlay_preshared_keys", "overlay_preshared_key_store", "overlay_handshake_timeout",
)  # fmt: skip
FACT = "/etc/ansible/facts.d/bulwark_overlay.fact"


def _expand(value):
    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def mesh_inventory(path, members):
    """An inventory directory as the README documents it: every host; the group mesh of members; the overlay
    switched on, and its settings, in group_vars/mesh.yml only (a host out of the group has none of them)."""
    os.environ.setdefault("MOLECULE_PROJECT_DIRECTORY", str(PROJECT))
    scenario = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]
    shared = _expand(scenario["group_vars"]["all"])
    host_vars = _expand(scenario["host_vars"])
    everyone = {k: v for k, v in shared.items() if not k.startswith(("bulwark_overlay_", "overlay_"))}
    mesh = {k: shared[k] for k in MESH_SETTINGS}
    mesh.update(bulwark_overlay_enabled=True, bulwark_overlay_group="mesh")
    (path / "group_vars").mkdir(parents=True, exist_ok=True)
    (path / "group_vars" / "all.yml").write_text(yaml.safe_dump(everyone))
    (path / "group_vars" / "mesh.yml").write_text(yaml.safe_dump(mesh))
    hosts = {"all": {"hosts": host_vars, "children": {"mesh": {"hosts": {m: {} for m in members}}}}}
    (path / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return str(path)


def run_playbook(inventory, playbook, *extra):
    env = ansible_env(
        ANSIBLE_PIPELINING="true", ANSIBLE_VAULT_PASSWORD_FILE=str(SCENARIO / "vault-password.txt")
    )
    argv = ["ansible-playbook", "-i", inventory, str(PROJECT / "playbooks" / playbook), *extra]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)


def harden(inventory, *extra):
    """harden.yml as an operator runs it (its firewall and overlay roles: the others are other scenarios')."""
    return run_playbook(inventory, "harden.yml", "--tags", "firewall,overlay", *extra)


def overlay_traces(host):
    return {
        path: host.file(path).exists
        for path in ("/etc/wireguard/wg0.conf", "/etc/bulwark/overlay/peers.json", FACT)
    } | {"psk files": host.run("ls /etc/bulwark/overlay/psk/ 2>/dev/null").stdout.strip() != ""}


def test_a_leaver_is_taken_out_through_harden_with_the_documented_inventory(hosts, tmp_path):
    ov3 = hosts["ov3"]
    # ov3 left the group (test_a_host_leaves_and_is_rejected) and still runs its old tunnel: it was
    # configured as a member, and recorded so.
    assert ov3.run("ip link show wg0").rc == 0
    assert json.loads(ov3.file(FACT).content_string) == {
        "interface": "wg0", "key_dir": "/etc/bulwark/overlay", "config": "/etc/wireguard/wg0.conf",
    }  # fmt: skip
    assert ov3.file(FACT).mode == 0o644 and ov3.file(FACT).user == "root"
    key = public_key(ov3)
    # What its old tunnel was, to play a leaver that keeps trying (test below): a lab's throwaway copy.
    assert ov3.run("umask 077; wg showconf wg0 > /root/leaver.conf").rc == 0
    inventory = mesh_inventory(tmp_path / "inventory", ["ov1", "ov2", "ov4"])
    predicted = harden(inventory, "--check", "--diff", "-v")
    assert predicted.returncode == 0, predicted.stdout[-3000:]
    assert recap(predicted)["ov3"]["changed"] > 0
    assert "wg-quick@wg0.service stopped and disabled" in predicted.stdout
    assert f"{FACT} removed (the record of its membership)" in predicted.stdout
    assert ov3.run("ip link show wg0").rc == 0 and all(overlay_traces(ov3).values())
    done = harden(inventory)
    assert done.returncode == 0, done.stdout[-3000:]
    assert ov3.run("ip link show wg0").rc != 0
    assert ov3.run("systemctl is-active --quiet wg-quick@wg0").rc != 0
    assert ov3.run("systemctl is-enabled --quiet wg-quick@wg0").rc != 0
    assert not any(overlay_traces(ov3).values()), overlay_traces(ov3)
    assert ov3.file("/etc/bulwark/overlay/private.key").exists  # overlay_leave_keep_key: true
    for name in ("ov1", "ov2", "ov4"):
        assert key not in peer_keys(hosts[name])
        assert UNDERLAY["ov3"] not in peer_set(hosts[name])
    assert pings(hosts["ov2"], overlay_ip(hosts["ov1"])[0])
    again = harden(inventory)
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(r["changed"] == 0 for r in recap(again).values()), again.stdout[-3000:]


def udp_flows(host, peer):
    """conntrack's UDP entries on host between its WireGuard port and peer's underlay address (either way)."""
    out = host.run("conntrack -L -p udp 2>/dev/null")
    assert out.rc == 0, "conntrack is missing on the member"
    return [
        line for line in out.stdout.splitlines()
        if f"src={peer} " in line and ("dport=51820" in line or "sport=51820" in line)
    ]  # fmt: skip


def test_a_leaver_that_keeps_trying_is_rejected_by_the_members_firewall(hosts):
    ov1, ov2, ov3 = hosts["ov1"], hosts["ov2"], hosts["ov3"]
    ov2_ip = overlay_ip(ov2)[0]
    # The path a current member takes is admitted: ov1's WireGuard flow to ov2 is live, with handshakes.
    assert pings(ov1, ov2_ip)
    assert udp_flows(ov2, UNDERLAY["ov1"])
    key = ov3.run("wg pubkey < /etc/bulwark/overlay/private.key").stdout.strip()
    assert ov3.run("ip link show wg0").rc != 0  # taken out by the test above
    # ov3 brings its old tunnel back (same key, port and peers) and keeps sending: a handshake attempt
    # every 5 s and a keepalive every 3 s, for 40 s - longer than overlay_keepalive (25 s) and conntrack's
    # UDP timeout (30 s). ov2 is given ov3's peer back by hand, so only the firewall stands in the way.
    up = ov3.run(
        "export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1; wireguard-go wg0 && "
        "wg setconf wg0 /root/leaver.conf && ip address add 10.99.0.213/24 dev wg0 && ip link set wg0 up && "
        "for p in $(wg show wg0 peers); do wg set wg0 peer $p persistent-keepalive 3; done"
    )
    assert up.rc == 0, up.stderr
    assert ov2.run(f"wg set wg0 peer {key} allowed-ips 10.99.0.213/32").rc == 0
    try:
        ov3.run(f"setsid -f sh -c 'exec ping -n -i 1 -c 40 -W 1 {ov2_ip} > /run/ping-leaver 2>&1'")
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            assert udp_flows(ov2, UNDERLAY["ov3"]) == [], "a flow from the leaver is tracked: admitted"
            time.sleep(5)
        transfer = ov3.run("wg show wg0 transfer").stdout
        sent = {line.split()[0]: int(line.split()[2]) for line in transfer.splitlines() if line.strip()}
        assert sent.get(public_key(ov2), 0) > 0, transfer  # it did keep trying
        assert ov2.run("wg show wg0 latest-handshakes").stdout.count(f"{key}\t0") == 1
        assert udp_flows(ov2, UNDERLAY["ov3"]) == []
        # The member still is admitted, all along.
        assert udp_flows(ov2, UNDERLAY["ov1"]) and pings(ov1, ov2_ip)
    finally:
        ov2.run(f"wg set wg0 peer {key} remove")
        ov3.run("ip link del wg0; rm -f /root/leaver.conf")


def test_a_leaver_rejoins(hosts, tmp_path):
    ov3 = hosts["ov3"]
    key = ov3.run("wg pubkey < /etc/bulwark/overlay/private.key").stdout.strip()
    inventory = mesh_inventory(tmp_path / "inventory", ["ov1", "ov2", "ov3", "ov4"])
    done = harden(inventory)
    assert done.returncode == 0, done.stdout[-3000:]
    assert public_key(ov3) == key  # its kept key
    for name in ("ov1", "ov2"):
        assert pings(ov3, overlay_ip(hosts[name])[0]), f"ov3 -> {name}"
        assert key in peer_keys(hosts[name])
    assert ov3.file(FACT).exists


def test_rotation_finds_a_custom_group_as_harden_does_and_an_unknown_name_fails(hosts, tmp_path):
    inventory = mesh_inventory(tmp_path / "inventory", ["ov1", "ov2", "ov3", "ov4"])
    members = ("ov1", "ov2", "ov3")
    keys = {name: public_key(hosts[name]) for name in members}
    refused = run_playbook(inventory, "rotate_overlay_keys.yml", "-e", "rotate=ov9")
    assert refused.returncode != 0
    assert "overlay_rotate_keys: ov9 is not a member of an overlay" in refused.stdout, refused.stdout[-3000:]
    assert all(r["changed"] == 0 for r in recap(refused).values())
    assert {name: public_key(hosts[name]) for name in members} == keys
    done = run_playbook(inventory, "rotate_overlay_keys.yml", "-e", "rotate=ov2")
    assert done.returncode == 0, done.stdout[-3000:]
    new_key = public_key(hosts["ov2"])
    assert new_key != keys["ov2"]
    assert public_key(hosts["ov1"]) == keys["ov1"]
    for name in ("ov1", "ov3"):
        assert new_key in peer_keys(hosts[name]) and keys["ov2"] not in peer_keys(hosts[name])
        assert pings(hosts[name], overlay_ip(hosts["ov2"])[0]), f"{name} -> ov2"
