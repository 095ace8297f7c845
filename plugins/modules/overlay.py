#!/usr/bin/python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402  (Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports)

DOCUMENTATION = r"""
---
module: overlay
short_description: One host's membership of an encrypted WireGuard mesh
description:
  - O(state=key) makes sure the host has its private key (X25519, generated on the host with
    C(cryptography), file mode 0600 in a 0700 directory) and returns only the public key, with the peer
    registry this host keeps (the public keys of the group's members, as last configured).
  - O(state=present) configures the host's view of the mesh described by O(members) (the whole group, not
    the play's hosts) - the C(wg-quick) file, then C(wg syncconf) for peer changes (tunnels keep working),
    a restart of C(wg-quick@<interface>) only when the address, the MTU or the key changes. The live
    public key is checked against the key file before and after. Handshakes are awaited after a change.
  - C(wg-quick) uses kernel WireGuard where the module exists and falls back to C(wireguard-go) where it
    does not; the unit and the file are the same either way.
  - O(state=present) records what it configured (interface, key directory, C(wg-quick) file; no secret) in
    the local fact C(/etc/ansible/facts.d/bulwark_overlay.fact) (0644, not executable), so that a host that
    left the group, and with it the group's variables, is still taken out (C(ansible_local.bulwark_overlay)).
  - O(state=absent) takes a host out of the mesh - C(wg-quick@<interface>) stopped and disabled, the interface
    removed, Docker's C(DOCKER-USER) holes for it closed, its C(wg-quick) file, peer registry, preshared keys,
    forwarding drop-in, staged rotation key and the local fact removed; its private key stays (for a host that
    rejoins) unless O(keep_key=false).
  - O(state=status) changes nothing and returns the host's key, its peer registry and the live interface - its
    address and each peer's latest handshake, by name.
  - With O(container_cidr), each member's container subnet is routed over the mesh (routes are kept in step
    after C(wg syncconf), which adds none), and where Docker runs the host's subnet is the Docker network
    O(container_network); while the interface is up, Docker's C(DOCKER-USER) chain admits the mesh's traffic
    to it (Docker drops routed traffic to containers that no published port names). The firewall role admits
    it in the project's own table, from the overlay interface only.
  - Key rotation, one host at a time - O(state=key) with O(rotate=true) stages a new key beside the current
    one and returns its public key (RV(next_public_key)); the peers are given that key, and O(state=present)
    on the host itself then switches to it with C(wg syncconf) (no restart) and makes it the key file.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  state:
    description: C(key), C(present), C(absent) or C(status).
    type: str
    choices: [key, present, absent, status]
    default: present
  name:
    description: This host's name in O(members).
    type: str
  members:
    description:
      - Every member of the group, each with C(name), C(public_key) (unknown keys fail, naming the host),
        C(endpoint) (underlay address; empty behind NAT), and optionally C(address) and C(container_subnet).
    type: list
    elements: dict
    default: []
  cidr:
    description: The overlay network (IPv4); addresses not given are allocated in it from the host's name.
    type: str
  port:
    description: The UDP port WireGuard listens on.
    type: int
    default: 51820
  interface:
    description: The WireGuard interface (up to 15 of C(A-Z a-z 0-9 _ . -)), checked in every O(state).
    type: str
    default: wg0
  mtu:
    description: The interface's MTU; default the underlay's (default route's interface) less 80.
    type: int
  keepalive:
    description: PersistentKeepalive towards peers with an endpoint (0 disables); spokes always keep one.
    type: int
    default: 25
  hub:
    description: The member that routes for members without an endpoint (default the first by name with one).
    type: str
  container_cidr:
    description: The network container subnets are allocated from (one per host), routed over the mesh.
    type: str
  container_prefix:
    description: The prefix length of each host's container subnet.
    type: int
    default: 24
  container_network:
    description:
      - The Docker network that holds this host's container subnet, created where Docker runs (a network of
        that name with another subnet is refused, naming it). Where Docker is not installed, the result says
        so in RV(container_network).
    type: str
    default: bulwark-overlay
  preshared_keys:
    description:
      - A preshared key per pair of members (WireGuard mixes it into every handshake, so recorded traffic
        stays secret should X25519 ever be broken). Each pair's key is drawn at random on the controller
        and kept in O(preshared_key_store); each host gets only its own pairs' keys and keeps them in
        files (0600) that the C(wg-quick) file names, as it names the private key.
    type: bool
    default: false
  preshared_key_store:
    description:
      - The controller's ansible-vault encrypted file of the pairs' keys, encrypted with the play's vault
        secret (C(--vault-id) or C(--vault-password-file)); the action plugin reads and extends it.
    type: str
  preshared_key_values:
    description: Set by the action plugin from O(preshared_key_store) - this host's peers' keys, by name.
    type: dict
  rotate:
    description: With O(state=key), stage a new private key (kept until O(state=present) switches to it).
    type: bool
    default: false
  key_dir:
    description:
      - The directory (0700) of the private key and the peer registry - a plain absolute path (letters, digits
        and C(. _ @ + -) in its names, no C(.) or C(..) component), checked in every O(state); anything else
        is refused, naming the option.
    type: str
    default: /etc/bulwark/overlay
  handshake_timeout:
    description: Seconds to wait for every peer's handshake after a change (missing ones are reported).
    type: int
    default: 10
  keep_key:
    description: With O(state=absent), keep the private key (a host that rejoins keeps its public key);
      C(false) removes it too.
    type: bool
    default: true
requirements:
  - wireguard-tools (C(wg), C(wg-quick)); wireguard-go where the kernel has no WireGuard.
  - python3-cryptography on the host.
attributes:
  check_mode:
    support: full
    description: Predicts the key generation, the file and the action; peers whose key this run would
      generate are shown as unknown.
  diff_mode:
    support: full
    description: The wg-quick file before and after (it holds no secret).
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 with systemd.
"""

EXAMPLES = r"""
- name: The host's overlay key (only the public key is returned)
  bulwark.hardening.overlay:
    state: key
  register: overlay_key

- name: The host's view of the mesh
  bulwark.hardening.overlay:
    name: "{{ inventory_hostname }}"
    cidr: 10.99.0.0/24
    members:
      - {name: node1, endpoint: 192.0.2.1, public_key: "{{ hostvars.node1.overlay_key.public_key }}"}
      - {name: node2, endpoint: 192.0.2.2, public_key: "{{ hostvars.node2.overlay_key.public_key }}"}
"""

RETURN = r"""
public_key:
  description: This host's public key (null in check mode before it is generated).
  returned: always
  type: str
next_public_key:
  description: The public key of the staged key (a rotation under way), or null.
  returned: always
  type: str
registry:
  description: Member name to public key, as this host last configured them.
  returned: always
  type: dict
address:
  description: This host's overlay address with the prefix (with O(state=status), the live one, or null).
  returned: state=present or state=status
  type: str
up:
  description: Whether the interface is up.
  returned: state=status
  type: bool
container_network:
  description: The Docker network of this host's container subnet - its name and subnet, or why there is none.
  returned: state=present
  type: dict
action:
  description: What was (or would be) done to the interface - start, restart, sync, or null.
  returned: state=present
  type: str
reasons:
  description: Why (address, MTU, peers added, removed, updated); with O(state=absent), what leaving removes.
  returned: state=present or state=absent
  type: list
  elements: str
peers:
  description: The peers configured, by name, with their latest handshake (seconds since the epoch, 0 none).
  returned: state=present or state=status
  type: dict
implementation:
  description: kernel or wireguard-go.
  returned: state=present or state=status
  type: str
"""

import ipaddress
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.host import commands, files
from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import leave, mesh, psk, wgconf

UNKNOWN_KEY = "(unknown: generated by this run)"
# A hub routes between its spokes and the mesh: forwarding on, now and at boot.
FORWARDING_FILE = "/etc/sysctl.d/60-bulwark-overlay.conf"
FORWARDING_TEXT = wgconf.HEADER + "net.ipv4.ip_forward = 1\n"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
DOCKER_SKIPPED = {"no docker": "Docker is not installed", "not answering": "Docker does not answer"}


def read_key(key_path):
    """(private text or None, public key or None): the key file is the single source."""
    private = files.read(key_path)
    if private is None:
        return None, None
    try:
        return private, wgconf.public_from_private(private)
    except ValueError:
        raise files.HostError(f"{key_path} does not hold a WireGuard private key") from None


def promote(key_path, next_path):
    """The staged key of a rotation becomes the key file."""
    files.write(key_path, read_key(next_path)[0], mode=0o600, uid=0, gid=0)
    files.remove(next_path)


def read_registry(path):
    text = files.read(path)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def live_state(run, iface):
    """(wg state or None, address, mtu) of the running interface."""
    rc, out, _err = run.run(["wg", "show", iface, "dump"]) if run.which("wg") else (1, "", "")
    state = wgconf.parse_dump(out) if rc == 0 else None
    del out  # the dump's first line holds the private key
    if state is None:
        return None, None, None
    rc, out, _err = run.run(["ip", "-j", "addr", "show", "dev", iface])
    address, mtu = None, None
    if rc == 0 and out.strip():
        info = json.loads(out)[0]
        mtu = info.get("mtu")
        v4 = [a for a in info.get("addr_info", []) if a.get("family") == "inet"]
        if v4:
            address = f"{v4[0]['local']}/{v4[0]['prefixlen']}"
    return state, address, mtu


def underlay_mtu(run):
    rc, out, _err = run.run(["ip", "-j", "route", "show", "default"])
    routes = json.loads(out) if rc == 0 and out.strip() else []
    dev = routes[0].get("dev") if routes else None
    text = files.read(f"/sys/class/net/{dev}/mtu") if dev else None
    return int(text) if text and text.strip().isdigit() else 1500


def psk_state(p, view, check_mode):
    """{peer name: preshared key, or None where the controller has drawn none yet} of view's peers, and
    each view peer's psk set to the fingerprint it must have live (a marker where its key is still to be
    drawn, so check mode predicts the change)."""
    if not p["preshared_keys"]:
        return {}
    given = p["preshared_key_values"]
    if given is None:
        raise mesh.MeshError(
            "preshared_keys: no keys given (the overlay action plugin gives them). Nothing was applied"
        )
    given = psk.check(given)
    keys = {}
    for peer in view["peers"]:
        key = given.get(peer["name"])
        if key is None and not check_mode:
            raise mesh.MeshError(f"preshared_key_values: no key for {peer['name']}. Nothing was applied")
        keys[peer["name"]] = key
        peer["psk"] = psk.fingerprint(key) if key else "(to be drawn by this run)"
    return keys


def psk_path(psk_dir, name):
    return os.path.join(psk_dir, f"{name}.psk")


def psk_listing(psk_dir):
    """The peers that have a preshared-key file on the host."""
    try:
        return [entry[: -len(".psk")] for entry in os.listdir(psk_dir) if entry.endswith(".psk")]
    except FileNotFoundError:
        return []


def interface_exists(run, iface):
    return bool(run.which("ip")) and run.run(["ip", "link", "show", "dev", iface])[0] == 0


def docker_holes_left(run, iface):
    """The DOCKER-USER holes for the interface that are live (leave.docker_holes_left), as deletions."""
    if not run.which("iptables"):
        return []
    rc, out, _err = run.run(["iptables", "-S", "DOCKER-USER"])
    return leave.docker_holes_left(out, iface) if rc == 0 else []


def implementation():
    return "kernel" if os.path.exists("/sys/module/wireguard") else "wireguard-go"


def live_routes(run, iface):
    """The networks routed via the interface, but its own address's (the kernel's connected route)."""
    rc, out, _err = run.run(["ip", "-j", "-4", "route", "show", "dev", iface])
    found = json.loads(out) if rc == 0 and out.strip() else []
    return sorted(
        str(ipaddress.ip_network(r["dst"])) for r in found if r.get("protocol") != "kernel" and "dst" in r
    )


def docker_network(run, name):
    """("absent" | "present" | "no docker" | "not answering", its subnets) of the Docker network name."""
    if not run.which("docker"):
        return "no docker", []
    rc, out, err = run.run(["docker", "network", "inspect", name, "--format", "{{json .IPAM.Config}}"])
    if rc == 0:
        return "present", sorted(c.get("Subnet") for c in json.loads(out) or [] if c.get("Subnet"))
    if "no such network" in (err or "").lower() or "not found" in (err or "").lower():
        return "absent", []
    return "not answering", []


def docker_holes_missing(run, iface, view):
    """The DOCKER-USER holes (wgconf.docker_holes) that are not live."""
    return [
        match
        for match in wgconf.docker_holes(view)
        if run.run([iface if a == "%i" else a for a in wgconf.docker_rule(match, "-C")])[0] != 0
    ]


def open_docker_holes(run, iface, matches):
    # Docker makes the chain when it starts (and keeps what is in it): failing here means it is there.
    run.run(["iptables", "-N", "DOCKER-USER"])
    for match in matches:
        argv = [iface if a == "%i" else a for a in wgconf.docker_rule(match, "-I")]
        run.run(argv, check=True, what="opening Docker's DOCKER-USER chain to the mesh")


def await_handshakes(run, iface, view, since, timeout):
    """{peer name: latest handshake} once every peer has one newer than since, or at the timeout."""
    names = {p["public_key"]: p["name"] for p in view["peers"]}
    deadline = time.monotonic() + timeout
    while True:
        state, _a, _m = live_state(run, iface)
        seen = {
            names[k]: p["latest_handshake"]
            for k, p in (state or {"peers": {}})["peers"].items()
            if k in names
        }
        if all(seen.get(n, 0) >= since for n in names.values()) or time.monotonic() >= deadline:
            return {n: seen.get(n, 0) for n in sorted(names.values())}
        time.sleep(0.5)


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["key", "present", "absent", "status"], "default": "present"},
            "name": {"type": "str"},
            "members": {"type": "list", "elements": "dict", "default": []},
            "cidr": {"type": "str"},
            "port": {"type": "int", "default": 51820},
            "interface": {"type": "str", "default": mesh.DEFAULT_INTERFACE},
            "mtu": {"type": "int"},
            "keepalive": {"type": "int", "default": 25, "no_log": False},
            "hub": {"type": "str"},
            "container_cidr": {"type": "str"},
            "container_prefix": {"type": "int", "default": 24},
            "container_network": {"type": "str", "default": "bulwark-overlay"},
            "preshared_keys": {"type": "bool", "default": False},
            "preshared_key_store": {"type": "str", "no_log": False},
            "preshared_key_values": {"type": "dict", "no_log": True},
            "rotate": {"type": "bool", "default": False},
            "key_dir": {"type": "str", "default": mesh.DEFAULT_KEY_DIR, "no_log": False},
            "handshake_timeout": {"type": "int", "default": 10},
            "keep_key": {"type": "bool", "default": True},
        },
        required_if=[("state", "present", ("name", "cidr", "members"))],
        supports_check_mode=True,
    )
    p = module.params
    try:
        # Before anything is read: the interface and the key directory name files (state=absent removes
        # one) and are written into wg-quick's PostUp, which bash runs.
        p.update(mesh.host_options(p))
    except mesh.MeshError as exc:
        module.fail_json(msg=str(exc))
    run = commands.Runner(module)
    key_dir = p["key_dir"]
    key_path = os.path.join(key_dir, "private.key")
    # A rotation's new key, staged until the host switches to it (its peers learn it first).
    next_path = os.path.join(key_dir, "private.key.next")
    registry_path = os.path.join(key_dir, "peers.json")
    conf_path = f"/etc/wireguard/{p['interface']}.conf"
    unit = f"wg-quick@{p['interface']}.service"
    try:
        public = read_key(key_path)[1]
        next_public = read_key(next_path)[1]
        registry = read_registry(registry_path)
        if p["state"] == "key":
            generated = public is None
            staged = p["rotate"] and not generated and next_public is None
            dir_ok = files.mode_of(key_dir) == 0o700 and files.mode_of(key_path) == 0o600
            if not module.check_mode and (generated or staged or not dir_ok):
                files.private_dir(key_dir)
                if generated:
                    files.write(key_path, wgconf.new_private(), mode=0o600, uid=0, gid=0)
                else:
                    files.set_attributes(key_path, 0o600, 0, 0)
                if staged:
                    files.write(next_path, wgconf.new_private(), mode=0o600, uid=0, gid=0)
                public, next_public = read_key(key_path)[1], read_key(next_path)[1]
            module.exit_json(
                changed=generated or staged or not dir_ok,
                public_key=public,
                next_public_key=next_public,
                registry=registry,
            )

        if p["state"] == "status":
            live, address, _mtu = live_state(run, p["interface"])
            names = {key: name for name, key in registry.items()}
            module.exit_json(
                changed=False,
                public_key=public,
                next_public_key=next_public,
                registry=registry,
                up=live is not None,
                address=address,
                peers={
                    names.get(k, k): v["latest_handshake"]
                    for k, v in (live or {"peers": {}})["peers"].items()
                },
                implementation=implementation(),
            )

        if p["state"] == "absent":
            # A host that left the group: every trace of its membership goes, by the names it recorded
            # (the role passes the recorded interface and key directory).
            before = files.read(conf_path)
            active = run.run(["systemctl", "is-active", "--quiet", unit])[0] == 0
            enabled = run.run(["systemctl", "is-enabled", "--quiet", unit])[0] == 0
            link = interface_exists(run, p["interface"])
            holes = docker_holes_left(run, p["interface"])
            doomed = [
                (path, what)
                for path, what in leave.removals(
                    conf_path,
                    key_dir,
                    psk_listing(os.path.join(key_dir, "psk")),
                    FORWARDING_FILE,
                    p["keep_key"],
                )
                if files.status(path) is not None
            ]
            reasons = (
                ([f"{unit} stopped and disabled"] if active or enabled else [])
                + ([f"interface {p['interface']} removed"] if link else [])
                + [f"Docker's DOCKER-USER no longer admits {' '.join(argv[3:-2])}" for argv in holes]
                + [f"{path} removed ({what})" for path, what in doomed]
            )
            changed = bool(reasons)
            if changed and not module.check_mode:
                if active or enabled:
                    run.run(["systemctl", "disable", "--now", unit], check=True, what=f"stopping {unit}")
                if interface_exists(run, p["interface"]):  # up by other means than the unit
                    run.run(
                        ["ip", "link", "del", "dev", p["interface"]],
                        check=True,
                        what="removing the interface",
                    )
                # The unit's PreDown deletes the holes its file names; any left (the file gone) go here.
                for argv in docker_holes_left(run, p["interface"]):
                    run.run(argv, check=True, what="closing Docker's DOCKER-USER chain to the mesh")
                for path, _what in doomed:
                    files.remove(path)
            module.exit_json(
                changed=changed,
                reasons=reasons,
                public_key=public if p["keep_key"] else None,
                registry=registry if module.check_mode else {},
                diff={"before_header": conf_path, "before": before or "", "after": ""},
            )

        settings = {
            k: p[k] for k in ("cidr", "port", "interface", "mtu", "keepalive", "hub", "container_cidr",
                              "container_prefix", "container_network")
        }  # fmt: skip
        # In check mode a key this run would generate is not known yet: predicted, not an error.
        the_mesh = mesh.build(settings, p["members"], require_keys=not module.check_mode)
        if p["name"] not in the_mesh.members:
            raise mesh.MeshError(f"{p['name']}: is not a member of the group. Nothing was applied")
        me = the_mesh.members[p["name"]]
        if public is None and not module.check_mode:
            raise files.HostError(f"{key_path} is missing: run the module with state=key first")
        # During a rotation the staged key is the one this run configures and then keeps.
        source = next_path if next_public else key_path
        public = next_public or public
        if public and me.public_key and me.public_key != public:
            raise mesh.MeshError(
                f"{p['name']}: the public key given ({me.public_key}) is not the one of "
                f"{source} ({public}). Nothing was applied"
            )
        if public and not me.public_key:
            me.public_key = public
            mesh.unique_keys(the_mesh.members.values())  # the key file's, against the others' given keys
        for m in the_mesh.members.values():
            m.public_key = m.public_key or UNKNOWN_KEY
        view = the_mesh.view(p["name"])
        psk_dir = os.path.join(key_dir, "psk")
        psks = psk_state(p, view, module.check_mode)
        psk_files = {name: key + "\n" for name, key in psks.items() if key}
        psk_stale = sorted(
            name
            for name in set(psk_files) | set(psk_listing(psk_dir))
            if files.read(psk_path(psk_dir, name)) != psk_files.get(name)
        )
        reasons_psk = [
            f"preshared key of {name} {'set' if name in psk_files else 'removed'}" for name in psk_stale
        ]
        mtu = p["mtu"] or mesh.default_mtu(underlay_mtu(run))
        live, live_address, live_mtu = live_state(run, p["interface"])
        action, reasons = wgconf.plan(view, mtu, live, (live_address, live_mtu), public)
        reasons += reasons_psk
        subnet = view["container_subnet"]
        # Docker matters to a host with a container subnet, and to a hub (Docker drops what it routes).
        docker_state, docker_subnets = (
            docker_network(run, p["container_network"]) if subnet or view["forwarding"] else (None, [])
        )
        if subnet and docker_state == "present" and docker_subnets != [subnet]:
            raise mesh.MeshError(
                f"{p['name']}: overlay_container_network: the Docker network {p['container_network']} has "
                f"{', '.join(docker_subnets) or 'no subnet'}, not its container subnet {subnet}: move "
                "its containers and remove it, or name another network. Nothing was applied"
            )
        docker = docker_state in ("present", "absent")
        create_network = bool(subnet) and docker_state == "absent"
        if create_network:
            reasons.append(f"Docker network {p['container_network']} ({subnet}) created")
        holes = docker_holes_missing(run, p["interface"], view) if docker and live is not None else []
        reasons += [f"Docker's DOCKER-USER admits {' '.join(m)}" for m in holes]
        # wg-quick routes every peer's networks when it starts; after a sync they are this module's.
        add_routes, del_routes = [], []
        if action in (None, "sync"):
            add_routes, del_routes = wgconf.route_changes(view, live_routes(run, p["interface"]))
        reasons += [f"route {n} added" for n in add_routes] + [f"route {n} removed" for n in del_routes]
        conntrack = run.which("conntrack")
        departed = wgconf.departed_endpoints(view, live) if conntrack else []
        reasons += [f"conntrack flows of {a} (a departed peer) deleted" for a in departed]
        forwarding_file = FORWARDING_TEXT if view["forwarding"] else None
        forwarding_stale = files.read(FORWARDING_FILE) != forwarding_file
        forward_off = view["forwarding"] and (files.read(IP_FORWARD) or "").strip() != "1"
        if forwarding_stale or forward_off:
            reasons.append("IPv4 forwarding on (the hub routes for its spokes)" if view["forwarding"]
                           else f"{FORWARDING_FILE} removed (no longer a hub)")  # fmt: skip
        enabled = run.run(["systemctl", "is-enabled", "--quiet", unit])[0] == 0
        before = files.read(conf_path)
        after = wgconf.render(
            view, mtu, key_path, docker=docker, psk_dir=psk_dir if p["preshared_keys"] else None
        )
        new_registry = {
            m.name: m.public_key for m in the_mesh.members.values() if m.public_key != UNKNOWN_KEY
        }
        # What this member configured, for the run that finds it outside the group (without its variables).
        fact = leave.record(p["interface"], key_dir, conf_path)
        fact_stale = files.read(leave.FACT_PATH) != fact
        if fact_stale:
            reasons.append(f"membership recorded in {leave.FACT_PATH}")
        changed = (
            bool(action) or before != after or not enabled or new_registry != registry
            or create_network or bool(holes or add_routes or del_routes)
            or forwarding_stale or forward_off or bool(psk_stale) or fact_stale
        )  # fmt: skip
        peers = {}
        if changed and not module.check_mode:
            if fact_stale:  # first: a run that stops after the interface came up still knows to take it down
                files.write(leave.FACT_PATH, fact, mode=0o644, uid=0, gid=0, make_dirs=0o755, anchor="/etc")
            files.private_dir(key_dir)
            files.write(registry_path, json.dumps(new_registry, indent=2, sort_keys=True) + "\n", mode=0o600)
            files.write(conf_path, after, mode=0o600, uid=0, gid=0, make_dirs=0o700, anchor="/etc")
            if psk_stale:
                files.private_dir(psk_dir)
            for name in psk_stale:  # before wg-quick's PostUp or syncconf reads them
                if name in psk_files:
                    files.write(psk_path(psk_dir, name), psk_files[name], mode=0o600, uid=0, gid=0)
                else:
                    files.remove(psk_path(psk_dir, name))
            if forwarding_stale and forwarding_file:
                files.write(FORWARDING_FILE, forwarding_file, mode=0o644, uid=0, gid=0)
            elif forwarding_stale:
                files.remove(FORWARDING_FILE)  # the live value stays: Docker may route too
            if forward_off:
                try:
                    files.set_kernel_value(IP_FORWARD, "1")
                except OSError as exc:
                    raise files.HostError(
                        f"{p['name']}: net.ipv4.ip_forward cannot be set here ({exc.strerror}): the hub "
                        "cannot route for its spokes"
                    ) from None
            if not enabled:
                run.run(["systemctl", "enable", unit], check=True, what=f"enabling {unit}")
            started = int(time.time())
            if action in ("start", "restart"):
                if source == next_path:
                    promote(key_path, next_path)  # wg-quick's PostUp reads the key file
                run.run(["systemctl", "restart", unit], check=True, what=f"starting {unit}")
            elif action == "sync":
                run.run(
                    ["wg", "syncconf", p["interface"], "/dev/stdin"],
                    # The key is read again here and only here: it goes from its file to wg's stdin.
                    data=wgconf.render_sync(view, read_key(source)[0], psks),
                    check=True,
                    what="wg syncconf",
                )
            after_live = live_state(run, p["interface"])[0]
            if after_live is None or after_live["public_key"] != public:
                module.fail_json(
                    msg=f"{p['interface']}: after the change, the live public key is not {source}'s",
                    changed=True,
                )
            if source == next_path and action == "sync":
                promote(key_path, next_path)  # live and checked: now the key file
            for address in departed:  # after the peer is gone: no keepalive of ours opens a flow again
                for argv in wgconf.conntrack_deletions(address, p["port"]):
                    rc, _out, err = run.run([conntrack, *argv[1:]])
                    if rc not in (0, 1):  # 1: no flow matched
                        module.warn(f"conntrack could not delete the flows of {address}: {err.strip()}")
            for net in add_routes:
                run.run(
                    ["ip", "route", "replace", net, "dev", p["interface"]], check=True, what=f"routing {net}"
                )
            for net in del_routes:
                run.run(
                    ["ip", "route", "del", net, "dev", p["interface"]], check=True, what=f"unrouting {net}"
                )
            if create_network:
                gateway = str(next(ipaddress.ip_network(subnet).hosts()))
                create = ["docker", "network", "create", "--driver", "bridge", "--subnet", subnet]
                run.run(
                    [*create, "--gateway", gateway, p["container_network"]],
                    check=True,
                    what=f"creating the Docker network {p['container_network']}",
                )
            if docker:  # wg-quick's PostUp opened them on a start; a sync does not run it
                open_docker_holes(run, p["interface"], docker_holes_missing(run, p["interface"], view))
            if action:
                peers = await_handshakes(run, p["interface"], view, started, p["handshake_timeout"])
        if not peers:
            state = live_state(run, p["interface"])[0] if not module.check_mode else live
            names = {pe["public_key"]: pe["name"] for pe in view["peers"]}
            known = (state or {"peers": {}})["peers"]
            peers = {n: known.get(k, {}).get("latest_handshake", 0) for k, n in names.items()}
        missing = sorted(n for n, t in peers.items() if not t)
        if missing and action and not module.check_mode:
            module.warn(f"no handshake yet with {', '.join(missing)} (not configured yet, or unreachable)")
    except (mesh.MeshError, files.HostError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=changed,
        public_key=public,
        registry=new_registry,
        address=view["address"],
        action=action,
        reasons=reasons,
        peers=peers,
        container_network={"name": p["container_network"], "subnet": subnet}
        if docker and subnet
        else {"skipped": DOCKER_SKIPPED.get(docker_state, "no container subnet")},
        implementation=implementation(),
        diff={"before_header": conf_path, "after_header": conf_path, "before": before or "", "after": after},
    )


if __name__ == "__main__":
    main()
