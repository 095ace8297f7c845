"""Lab hosts: systemd Debian containers that look like fresh cloud servers, reached over SSH."""

import ipaddress
import os
import socket
import time
from pathlib import Path

import docker.types
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from .images import LAB_USER, RELEASES, image_tag

LABEL = "org.bulwark.lab"
NETWORK = "bulwark-lab"
SUBNET = ipaddress.ip_network("172.30.0.0/24")
FIRST_HOST = 11

# What works on these machines (--privileged does not: CAP_SYS_RESOURCE is outside the
# bounding set). Molecule's platforms in molecule/*/molecule.yml carry the same options.
CAPABILITIES = ["NET_ADMIN", "NET_RAW", "SYS_ADMIN", "AUDIT_CONTROL", "DAC_READ_SEARCH"]
SECURITY_OPTS = ["seccomp=unconfined", "apparmor=unconfined"]
TMPFS = {"/run": "rw", "/run/lock": "rw", "/tmp": "rw"}  # noqa: S108  (container mounts)


def operator_key(lab_dir):
    """The operator's SSH key pair in the lab folder, made with cryptography on first use."""
    private = Path(lab_dir, "id_ed25519")
    public = private.with_suffix(".pub")
    if not private.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        Path(lab_dir).mkdir(parents=True, exist_ok=True)
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.OpenSSH,
                    serialization.NoEncryption(),
                )
            )
        public.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            + b" bulwark-lab-operator\n"
        )
    return private.resolve(), public.resolve()


def _network(client):
    for network in client.networks.list(names=[NETWORK]):
        return network
    ipam = docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=str(SUBNET), gateway=str(SUBNET[1]))]
    )
    return client.networks.create(NETWORK, driver="bridge", ipam=ipam, labels={LABEL: "1"})


def lab_hosts(count):
    """Names, addresses and releases of the lab's hosts: a mix of Debian 12 and 13."""
    releases = list(RELEASES)
    return [
        {
            "name": f"lab{i + 1}",
            "address": str(SUBNET[FIRST_HOST + i]),
            "release": releases[i % len(releases)],
        }
        for i in range(count)
    ]


def _wait_for_ssh(address, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=2) as conn:
                if conn.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"lab: no SSH answer from {address} within {timeout} s")


def up(client, count, lab_dir, inventory_dir, log=print):
    down(client, log=lambda *_unused: None)
    _unused, public = operator_key(lab_dir)
    network = _network(client)
    hosts = lab_hosts(count)
    for host in hosts:
        container = client.containers.create(
            image_tag(host["release"]),
            name=f"bulwark-{host['name']}",
            hostname=host["name"],
            labels={LABEL: "1"},
            cap_add=CAPABILITIES,
            security_opt=SECURITY_OPTS,
            cgroupns="host",
            devices=["/dev/net/tun:/dev/net/tun"],
            tmpfs=TMPFS,
            volumes={
                "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                str(public): {"bind": "/etc/lab/operator.pub", "mode": "ro"},
            },
            network=NETWORK,
            detach=True,
        )
        network.disconnect(container)
        network.connect(container, ipv4_address=host["address"])
        container.start()
    for host in hosts:
        _wait_for_ssh(host["address"])
        log(f"lab: {host['name']} (Debian {RELEASES[host['release']]}) at {host['address']}")
    write_inventory(hosts, lab_dir, inventory_dir)
    return hosts


def write_inventory(hosts, lab_dir, inventory_dir):
    private, public = operator_key(lab_dir)
    inventory = {
        "all": {
            "vars": {
                "ansible_user": LAB_USER,
                "ansible_become": True,
                "ansible_ssh_private_key_file": str(private),
                # Lab hosts get new host keys whenever they are recreated at the same address.
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                # The controller reaches the lab through the bridge's gateway.
                "bulwark_admin_networks": [f"{SUBNET[1]}/32"],
                # The cloud user becomes the fleet's admin, with the operator's key only.
                "bootstrap_admins": [{"name": LAB_USER, "ssh_keys": [public.read_text().strip()]}],
            },
            "children": {
                "lab": {
                    "hosts": {
                        host["name"]: {
                            "ansible_host": host["address"],
                            "lab_debian_release": host["release"],
                        }
                        for host in hosts
                    }
                }
            },
        }
    }
    Path(inventory_dir).mkdir(parents=True, exist_ok=True)
    path = Path(inventory_dir, "hosts.yml")
    path.write_text(
        "# Written by `make lab`; rewritten on every `make lab`.\n"
        + yaml.safe_dump(inventory, sort_keys=False)
    )
    return path


def down(client, log=print):
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)
        log(f"lab: removed {container.name}")
    for network in client.networks.list(names=[NETWORK]):
        network.remove()
