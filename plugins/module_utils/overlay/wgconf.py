"""WireGuard's side of the overlay (pure): the configuration file, the live state, the plan, the keys.

The private key lives only in its own file: the configuration names it (PostUp sets it with `wg set`),
so the configuration file and its diff never hold a secret; `wg syncconf` gets it on its standard input.
"""

import base64
import ipaddress
import shlex

from ..text import control_character
from .mesh import MeshError
from .psk import fingerprint as psk_fingerprint

HEADER = "# Managed by bulwark.hardening (overlay role): changes here are overwritten.\n"


def public_from_private(private_b64):
    """The base64 public key of a base64 X25519 private key (cryptography, imported on the host only)."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: PLC0415

    raw = base64.b64decode(private_b64.strip(), validate=True)
    public = X25519PrivateKey.from_private_bytes(raw).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def new_private():
    """A new base64 X25519 private key."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: PLC0415

    raw = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode() + "\n"


def _peer_lines(peer):
    lines = ["", "[Peer]", f"# {peer['name']}", f"PublicKey = {peer['public_key']}"]
    lines.append(f"AllowedIPs = {', '.join(peer['allowed_ips'])}")
    if peer.get("endpoint"):
        lines.append(f"Endpoint = {peer['endpoint']}")
    if peer.get("keepalive"):
        lines.append(f"PersistentKeepalive = {peer['keepalive']}")
    return lines


def docker_holes(view):
    """The matches of the rules that Docker's DOCKER-USER chain needs for the mesh on this host (%i: the
    interface): Docker drops routed traffic to a container that no published port names, and anything
    else routed, whatever the project's own table accepts. The mesh to this host's container subnet; on
    a hub, the mesh through it."""
    holes = []
    if view.get("container_subnet"):
        holes.append(["-i", "%i", "-d", view["container_subnet"]])
    if view.get("forwarding"):
        holes.append(["-i", "%i", "-o", "%i"])
    return holes


def docker_rule(match, action):
    """The iptables command that tests (-C), inserts (-I) or deletes (-D) one DOCKER-USER hole."""
    return ["iptables", action, "DOCKER-USER", *match, "-j", "ACCEPT"]


def hooks(view, key_path, docker=False, psk_dir=None):
    """wg-quick's PostUp and PreDown commands for a host's view: [(key, [(argv, quiet), ...])], each a chain
    of commands joined by "||" (quiet: its standard error discarded). "%i" is the interface (wg-quick puts its
    name in before bash runs the line)."""
    found = [("PostUp", [(["wg", "set", "%i", "private-key", key_path], False)])]
    for peer in view["peers"]:
        if psk_dir and peer.get("psk"):
            psk_file = f"{psk_dir}/{peer['name']}.psk"
            found.append(
                (
                    "PostUp",
                    [(["wg", "set", "%i", "peer", peer["public_key"], "preshared-key", psk_file], False)],
                )
            )
    holes = docker_holes(view) if docker else []
    if holes:
        found.append(("PostUp", [(["iptables", "-N", "DOCKER-USER"], True), (["true"], False)]))
    for match in holes:
        found += [
            ("PostUp", [(docker_rule(match, "-C"), True), (docker_rule(match, "-I"), False)]),
            ("PreDown", [(docker_rule(match, "-D"), False), (["true"], False)]),
        ]
    return found


def hook_line(commands):
    """One wg-quick hook as bash reads it: every word quoted (wg-quick runs the line with bash's eval)."""
    return " || ".join(shlex.join(argv) + (" 2>/dev/null" if quiet else "") for argv, quiet in commands)


def render(view, mtu, key_path, docker=False, psk_dir=None):
    """The wg-quick file for a host's view (mesh.Mesh.view): interface, then one section per peer.
    docker: the host runs Docker; the interface then opens Docker's holes for the mesh (docker_holes) while
    it is up (DOCKER-USER is created here if Docker has not started yet; Docker keeps it).
    psk_dir: where the peers' preshared keys are (one file per peer that has one, named after it); like
    the private key, they are named here and set by PostUp, never written into this file."""
    lines = [
        HEADER.rstrip("\n"),
        "[Interface]",
        f"Address = {view['address']}",
        f"MTU = {mtu}",
        f"ListenPort = {view['listen_port']}",
    ]
    lines += [f"{key} = {hook_line(commands)}" for key, commands in hooks(view, key_path, docker, psk_dir)]
    for peer in view["peers"]:
        lines += _peer_lines(peer)
    for line in lines[1:]:
        _one_line(line)
    return "\n".join(lines) + "\n"


def _one_line(line):
    """A rendered line that would end early or start another: wg-quick cuts a line at its first "#" (quoted
    or not) and reads each line as one key. The model refuses such values; this keeps it so."""
    bad = control_character(line) or ("#" in line and not line.startswith("# ") and repr("#"))
    if bad:
        raise MeshError(
            f"{line.split(' = ', 1)[0]}: a value holds {bad}, which wg-quick would misread. "
            "Nothing was applied"
        )


def render_sync(view, private_key, psks=None):
    """What `wg syncconf` reads on its standard input: the file without wg-quick's keys, with the private
    key and the peers' preshared keys (psks: peer name -> key; measured: syncconf clears a key its input
    does not name). It is never written to a file."""
    lines = ["[Interface]", f"PrivateKey = {private_key.strip()}", f"ListenPort = {view['listen_port']}"]
    for peer in view["peers"]:
        section = [line for line in _peer_lines(peer) if not line.startswith("#")]
        if (psks or {}).get(peer["name"]):
            section.insert(3, f"PresharedKey = {psks[peer['name']].strip()}")
        lines += section
    return "\n".join(lines) + "\n"


def parse_dump(text):
    """`wg show <if> dump` -> {public_key, listen_port, peers: {key: {...}}}; the private and
    preshared keys in the dump are dropped here, never kept."""
    rows = [line.split("\t") for line in (text or "").splitlines() if line.strip()]
    if not rows or len(rows[0]) < 4:
        return None
    head = rows[0]
    state = {
        "public_key": head[1] if head[1] != "(none)" else None,
        "listen_port": int(head[2]) if head[2].isdigit() else None,
        "peers": {},
    }
    for row in rows[1:]:
        if len(row) < 8:
            continue
        allowed = [] if row[3] == "(none)" else sorted(row[3].split(","))
        state["peers"][row[0]] = {
            # Its fingerprint, to compare with the wanted one; the key itself is dropped here.
            "psk": None if row[1] == "(none)" else psk_fingerprint(row[1]),
            "endpoint": None if row[2] == "(none)" else row[2],
            "allowed_ips": allowed,
            "latest_handshake": int(row[4]) if row[4].isdigit() else 0,
            "keepalive": 0 if row[7] == "off" else int(row[7]),
        }
    return state


def peers_differ(view, live):
    """Names of the peer changes live needs to match view: (added, removed, updated) public keys."""
    want = {p["public_key"]: p for p in view["peers"]}
    have = live["peers"] if live else {}
    added = sorted(k for k in want if k not in have)
    removed = sorted(k for k in have if k not in want)
    updated = []
    for key in sorted(set(want) & set(have)):
        w, h = want[key], have[key]
        if sorted(w["allowed_ips"]) != h["allowed_ips"] or (w["keepalive"] or 0) != h["keepalive"]:
            updated.append(key)
        elif w.get("psk") != h.get("psk"):
            updated.append(key)
        elif w.get("endpoint") and w["endpoint"] != h["endpoint"]:
            updated.append(key)
    return added, removed, updated


def routes(view):
    """The networks the interface must route that its own address's network does not cover (peers'
    container subnets, a hub's spokes): wg-quick routes them at start, `wg syncconf` does not."""
    own = ipaddress.ip_interface(view["address"]).network
    wanted = set()
    for peer in view["peers"]:
        for net in peer["allowed_ips"]:
            if not ipaddress.ip_network(net).subnet_of(own):
                wanted.add(net)
    return sorted(wanted)


def route_changes(view, live_routes):
    """(to add, to remove): the routes via the interface that differ from what the view needs."""
    wanted = set(routes(view))
    have = set(live_routes or ())
    return sorted(wanted - have), sorted(have - wanted)


def plan(view, mtu, live, live_interface, public_key):
    """What to do: "start" (interface down), "restart" (address or MTU differ), "sync" (key, peers or
    port differ), or None; and the reasons, for the module's result. live_interface: the running
    interface's (address, MTU)."""
    live_address, live_mtu = live_interface
    if live is None:
        return "start", ["the interface is down"]
    reasons = []
    if live_address != view["address"]:
        reasons.append(f"address {live_address} -> {view['address']}")
    if live_mtu != mtu:
        reasons.append(f"MTU {live_mtu} -> {mtu}")
    if reasons:
        return "restart", reasons
    # A new key (a rotation) goes live with the peers through syncconf: no restart.
    if live["public_key"] != public_key:
        reasons.append("the live public key is not the key file's")
    added, removed, updated = peers_differ(view, live)
    if live["listen_port"] != view["listen_port"]:
        reasons.append(f"listen port {live['listen_port']} -> {view['listen_port']}")
    names = {p["public_key"]: p["name"] for p in view["peers"]}
    reasons += [f"peer {names[k]} added" for k in added]
    reasons += [f"peer {k} removed" for k in removed]
    reasons += [f"peer {names[k]} updated" for k in updated]
    return ("sync" if reasons else None), reasons


def departed_endpoints(view, live):
    """The underlay addresses of live peers that leave this host's view (their key is gone) and that no
    remaining peer shares: their conntrack flows must go too, as the firewall admits established flows
    before its peer set (a flow this host's own keepalives opened would otherwise let a leaver in)."""
    if not live:
        return []
    wanted_keys = {p["public_key"] for p in view["peers"]}
    kept = {_host(p["endpoint"]) for p in view["peers"] if p.get("endpoint")}
    kept |= {_host(v["endpoint"]) for k, v in live["peers"].items() if k in wanted_keys and v.get("endpoint")}
    gone = {
        _host(v["endpoint"]) for k, v in live["peers"].items() if k not in wanted_keys and v.get("endpoint")
    }
    return sorted(gone - kept - {None}, key=lambda a: (a.version, a))


def _host(endpoint):
    """The address of an endpoint as `wg show dump` writes it (192.0.2.1:51820, [2001:db8::1]:51820)."""
    host = (endpoint or "").rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def conntrack_deletions(address, port):
    """The `conntrack -D` argv (the tool's name first) for the WireGuard flows between this host's port and
    address, both ways: the ones the peer opened and the ones this host's keepalives opened."""
    base = ["conntrack", "-D", "-f", f"ipv{address.version}", "-p", "udp"]
    return [
        [*base, "-s", str(address), "--dport", str(port)],
        [*base, "-d", str(address), "--sport", str(port)],
    ]
