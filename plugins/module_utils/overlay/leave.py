"""A host leaving the mesh (pure): the record of what it configured, what leaving removes, and its plan.

A host that leaves the group usually loses the group's variables too (the interface's name, the key
directory): what it configured as a member is recorded on the host itself, as a local fact that the
common role's one `setup` call reads, so that the run that finds it outside the group can take it out.
"""

import dataclasses
import json
import shlex

from ..host.plan import Command, Plan, delete

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


def removal(path, before, what, secret=False):
    """Remove path; its inverse puts back `before` where that was a regular file (a host.plan.Current with
    its mode: a link is not written back)."""
    kept = before if before is not None and before.mode is not None else None
    return delete(path, kept, what=what, secret=secret)


# What puts a stopped unit back, by (it was active, it was enabled).
UNIT_BACK = {(True, True): ("enable", "--now"), (False, True): ("enable",), (True, False): ("start",)}


@dataclasses.dataclass
class Member:
    """What the module read of a membership to take out. doomed: [(path, what, Current)] of the files
    removals() names that exist (Current's mode None: not a regular file); holes: the `iptables -D` argv of
    the DOCKER-USER holes left (docker_holes_left)."""

    doomed: list = dataclasses.field(default_factory=list)
    active: bool = False
    enabled: bool = False
    link: bool = False
    holes: list = dataclasses.field(default_factory=list)


def plan(interface, found):
    """(Plan, reasons) of taking the membership out. The holes close first (the unit's PreDown closes the
    ones its file names, and tolerates their absence), then the unit stops and the interface goes, then
    the files, the record last."""
    unit = f"wg-quick@{interface}.service"
    reasons = ([f"{unit} stopped and disabled"] if found.active or found.enabled else []) + (
        [f"interface {interface} removed"] if found.link else []
    )
    reasons += [f"Docker's DOCKER-USER no longer admits {' '.join(argv[3:-2])}" for argv in found.holes]
    reasons += [f"{path} removed ({what})" for path, what, _before in found.doomed]
    ops = Plan()
    for argv in found.holes:
        undo = Command(
            ("iptables", "-I", *argv[2:]), what=f"Docker's DOCKER-USER admits {' '.join(argv[3:-2])}"
        )
        ops.add(Command(tuple(argv), what="closing Docker's DOCKER-USER chain to the mesh", inverse=undo))
    if found.active or found.enabled:
        back = UNIT_BACK[(found.active, found.enabled)]
        undo = Command(("systemctl", *back, unit), what=f"{unit} put back ({' '.join(back)})")
        ops.add(Command(("systemctl", "disable", "--now", unit), what=f"stopping {unit}", inverse=undo))
    if found.link and not found.active:  # up by other means than the unit (its stop takes it down)
        ops.add(Command(("ip", "link", "del", "dev", interface), what="removing the interface"))
    for path, what, before in found.doomed:
        ops.add(removal(path, before, f"{path} removed ({what})", secret=True))
    return ops, reasons
