"""A host leaving the mesh (pure): the record of what it configured, and what leaving removes.

A host that leaves the group usually loses the group's variables too (the interface's name, the key
directory): what it configured as a member is recorded on the host itself, as a local fact that the
common role's one `setup` call reads, so that the run that finds it outside the group can take it out.
"""

import json
import shlex

# A local fact (JSON, not executable: `setup` runs executable .fact files) that names no secret.
FACT_PATH = "/etc/ansible/facts.d/bulwark_overlay.fact"


def record(interface, key_dir, config):
    """The fact's text: what this host configured as a member."""
    return (
        json.dumps({"interface": interface, "key_dir": key_dir, "config": config}, indent=2, sort_keys=True)
        + "\n"
    )


def removals(config, key_dir, psk_names, forwarding_file, keep_key):
    """[(path, what)] a leaving host removes, in this order: the record of its membership last, so that a run
    that stops half-way is finished by the next one."""
    found = [(config, "its wg-quick file"), (f"{key_dir}/peers.json", "its peer registry")]
    found += [(f"{key_dir}/psk/{name}.psk", f"its preshared key with {name}") for name in sorted(psk_names)]
    found.append((forwarding_file, "its forwarding drop-in"))
    # A rotation's staged key is never used again: a member that rejoins stages a new one.
    found.append((f"{key_dir}/private.key.next", "its staged rotation key"))
    if not keep_key:
        found.append((f"{key_dir}/private.key", "its private key"))
    found.append((FACT_PATH, "the record of its membership"))
    return found


def docker_holes_left(rules, interface):
    """The argv that delete each DOCKER-USER hole for the interface (wgconf.docker_holes: ACCEPT rules
    matching only -i/-o the interface and -d a subnet) in `iptables -S DOCKER-USER`'s output."""
    found = []
    for line in rules.splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if words[:2] != ["-A", "DOCKER-USER"] or words[-2:] != ["-j", "ACCEPT"]:
            continue
        match = words[2:-2]
        if len(match) % 2:
            continue
        pairs = dict(zip(match[::2], match[1::2], strict=True))
        if len(pairs) * 2 != len(match) or pairs.get("-i") != interface:
            continue
        if set(pairs) - {"-i", "-o", "-d"} or pairs.get("-o", interface) != interface:
            continue
        found.append(["iptables", "-D", "DOCKER-USER", *match, "-j", "ACCEPT"])
    return found
