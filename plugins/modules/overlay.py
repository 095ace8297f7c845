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

import functools
import ipaddress
import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.host import (
    commands,
    docker,
    executor,
    files,
    waits,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.host.plan import Current
from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import leave, mesh, plan, wgconf

# --- reading the host -----------------------------------------------------------------------------------


def current(path):
    """The file at path as read (host.plan.Current; its mode None where it is not a regular file), or None."""
    found = files.status(path)
    if found is None:
        return None
    content = None if found[0] == "directory" else files.read(path)
    return Current(content, found[1] if found[0] == "file" else None, found[2], found[3])


def read_key(path):
    """(Current, public key) of a key file, or (None, None): the key file is the single source."""
    found = current(path)
    if found is None or found.content is None:
        return None, None
    try:
        return found, wgconf.public_from_private(found.content)
    except ValueError:
        raise files.HostError(f"{path} does not hold a WireGuard private key") from None


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
    if not docker.running():
        return "not answering", []
    rc, out, err = run.run(["docker", "network", "inspect", name, "--format", "{{json .IPAM.Config}}"])
    if rc == 0:
        return "present", sorted(c.get("Subnet") for c in json.loads(out) or [] if c.get("Subnet"))
    if "no such network" in (err or "").lower() or "not found" in (err or "").lower():
        return "absent", []
    return "not answering", []


def holes_missing(run, iface, view):
    """The DOCKER-USER holes (wgconf.docker_holes) that are not live."""
    return [
        match
        for match in wgconf.docker_holes(view)
        if run.run([iface if a == "%i" else a for a in wgconf.docker_rule(match, "-C")])[0] != 0
    ]


def holes_left(run, iface):
    """The DOCKER-USER holes for the interface that are live (leave.docker_holes_left), as deletions."""
    if not run.which("iptables"):
        return []
    rc, out, _err = run.run(["iptables", "-S", "DOCKER-USER"])
    return leave.docker_holes_left(out, iface) if rc == 0 else []


def psk_names(paths):
    """The peers that have a preshared-key file on the host."""
    return [entry[: -len(".psk")] for entry in files.names(paths.psk_dir) if entry.endswith(".psk")]


def unit_is(run, verb, unit):
    return run.run(["systemctl", verb, "--quiet", unit])[0] == 0


def implementation():
    return "kernel" if files.exists("/sys/module/wireguard") else "wireguard-go"


def read_present(run, p, paths, me, registry):
    """What state=present decides on (plan.Host)."""
    view, iface = me.view, paths.interface
    names = psk_names(paths)
    wanted = [leave.FACT_PATH, paths.registry, paths.conf, plan.FORWARDING_FILE]
    wanted += [paths.psk(name) for name in sorted(set(names) | set(me.psks))]
    mtu = p["mtu"] or mesh.default_mtu(underlay_mtu(run))
    live, address, live_mtu = live_state(run, iface)
    # Docker matters to a host with a container subnet, and to a hub (Docker drops what it routes).
    found = (view["container_subnet"] or view["forwarding"]) and docker_network(run, p["container_network"])
    docker_here = bool(found) and found[0] in ("present", "absent")
    return plan.Host(
        files={path: current(path) for path in wanted},
        registry=registry,
        psk_names=names,
        mtu=mtu,
        live=live,
        live_address=address,
        live_mtu=live_mtu,
        live_routes=live_routes(run, iface) if live is not None else [],
        docker=found or (None, []),
        holes_missing=holes_missing(run, iface, view) if docker_here and live is not None else [],
        conntrack=run.which("conntrack"),
        ip_forward=files.read(plan.IP_FORWARD) if view["forwarding"] else None,
        enabled=unit_is(run, "is-enabled", paths.unit),
    )


# --- the states -----------------------------------------------------------------------------------------


def execute(module, run, ops):
    """Run the plan (check mode: touch nothing); a PlanFailed goes to main's one way to fail."""
    runner = executor.Executor(run, module.check_mode)
    runner.run(ops)
    for warning in runner.warnings:
        module.warn(warning)


def state_key(module, run, paths, keys, registry):
    p = module.params
    mode = files.mode_of(paths.key_dir)
    ops, result = plan.key(paths, keys, mode, p["rotate"], wgconf.new_private, check_mode=module.check_mode)
    execute(module, run, ops)
    return {**result, "registry": registry}


def state_status(module, run, paths, keys, registry):
    live, address, _mtu = live_state(run, paths.interface)
    names = {key: name for name, key in registry.items()}
    peers = {names.get(k, k): v["latest_handshake"] for k, v in (live or {"peers": {}})["peers"].items()}
    found = {"public_key": keys.public, "next_public_key": keys.next_public, "registry": registry}
    return {**found, "changed": False, "up": live is not None, "address": address, "peers": peers,
            "implementation": implementation()}  # fmt: skip


def state_absent(module, run, paths, keys, registry):
    """A host that left the group: every trace of its membership goes, by the names it recorded (the role
    passes the recorded interface and key directory)."""
    keep_key, before = module.params["keep_key"], files.read(paths.conf)
    found = leave.removals(paths.conf, paths.key_dir, psk_names(paths), plan.FORWARDING_FILE, keep_key)
    doomed = [(path, what, current(path)) for path, what in found]
    found = leave.Member(
        doomed=[entry for entry in doomed if entry[2] is not None],
        active=unit_is(run, "is-active", paths.unit),
        enabled=unit_is(run, "is-enabled", paths.unit),
        link=bool(run.which("ip")) and run.run(["ip", "link", "show", "dev", paths.interface])[0] == 0,
        holes=holes_left(run, paths.interface),
    )
    ops, reasons = leave.plan(paths.interface, found)
    execute(module, run, ops)
    return {
        "changed": bool(reasons), "reasons": reasons, "public_key": keys.public if keep_key else None,
        "registry": registry if module.check_mode else {},
        "diff": {"before_header": paths.conf, "before": before or "", "after": ""},
    }  # fmt: skip


def current_peers(run, view, iface):
    return plan.peers(view, live_state(run, iface)[0])


def state_present(module, run, paths, keys, registry):
    p = module.params
    me = plan.member(p, paths, keys, check_mode=module.check_mode)
    host = read_present(run, p, paths, me, registry)
    ops, result = plan.present(p, paths, keys, me, host)
    since = int(time.time())
    execute(module, run, ops)
    action, iface = result["action"], paths.interface
    if module.check_mode:
        peers = plan.peers(me.view, host.live)
    elif action:  # handshakes are awaited after a change (missing ones are reported)
        probe = functools.partial(current_peers, run, me.view, iface)
        peers = waits.poll(probe, plan.handshaken(since), p["handshake_timeout"])
    else:
        peers = current_peers(run, me.view, iface)
    missing = sorted(name for name, seen in peers.items() if not seen)
    if missing and action and not module.check_mode:
        module.warn(f"no handshake yet with {', '.join(missing)} (not configured yet, or unreachable)")
    return {**result, "peers": peers, "implementation": implementation()}


STATES = {"key": state_key, "status": state_status, "absent": state_absent, "present": state_present}


def main():
    module = AnsibleModule(
        argument_spec=plan.argument_spec(),
        required_if=[("state", "present", ("name", "cidr", "members"))],
        supports_check_mode=True,
    )
    p = module.params
    try:
        # Before anything is read: the interface and the key directory name files (state=absent removes
        # one) and are written into wg-quick's PostUp, which bash runs.
        p.update(mesh.host_options(p))
    except mesh.MeshError as exc:
        executor.fail(module, exc)
    run = commands.Runner(module)
    paths = plan.Paths(p["interface"], p["key_dir"])
    try:
        keys = plan.Keys(*read_key(paths.key), *read_key(paths.next))
        registry = plan.registry_of(files.read(paths.registry))
        result = STATES[p["state"]](module, run, paths, keys, registry)
    except (mesh.MeshError, plan.Refused, files.HostError) as exc:
        executor.fail(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
