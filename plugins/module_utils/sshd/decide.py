"""What sshd_config decides from what it read: the guard's verdict, the result it reports and what it applies.

Pure: the module reads the host (host layer), hands the texts and facts in, and acts on what comes back.
"""

import os

from ansible_collections.bulwark.hardening.plugins.module_utils.host import plan as host_plan
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import guard, plan, render

NOTHING = "Nothing was applied"
VALIDATED = "sshd -t accepts the candidate configuration (validate_only: nothing was changed)"
# sshd's change is its live files: a confirmation stages nothing to persist (commit-confirm's staged.json).
PERSISTS_NOTHING = {"files": [], "commands": []}
RESTORED = "the last confirmed sshd configuration was restored (removed host keys and moduli stay removed)"
WAITS = "the last sshd change waits for its confirmation"


class Failed(Exception):
    """The run stops here; `result` says truthfully what happened on the host."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.result = {"changed": False, "refusals": [], **result}


def nothing(msg, now=""):
    return f"{str(msg).rstrip('.')}. {NOTHING}{now}"


def refused(msg, **result):
    return Failed(nothing(msg), **result)


def other_dropins(names, own):
    """The names of a drop-in directory's entries that sshd's `Include <dir>/*.conf` reads besides ours."""
    return [name for name in names if name.endswith(".conf") and name != own]


def other_dropin_paths(path, names):
    """The paths of the drop-ins beside ours (`path`) that sshd's Include reads, from their directory's."""
    directory = os.path.dirname(path)
    return [os.path.join(directory, name) for name in other_dropins(names, os.path.basename(path))]


def host_key_files(kinds):
    """The private and public files of these host key types."""
    return [f for kind in kinds for f in (plan.HOST_KEY.format(kind), plan.HOST_KEY.format(kind) + ".pub")]


def sandbox_main(main_after, dropin_dir, sandbox_dir):
    """The candidate main config for the sandbox: its Include of the drop-in directory points into it."""
    return render.replace_include(
        main_after, render.include_line(dropin_dir), render.include_line(sandbox_dir)
    )


def key_bits(rc, out):
    """The size of a key from `ssh-keygen -lf` (rc, stdout); 0 when it could not be read."""
    words = out.split()
    return int(words[0]) if rc == 0 and words and words[0].isdigit() else 0


def untemp(text, renames):
    """A checker's message about the sandbox's copies, naming the live files instead ({copy: live})."""
    text = (text or "").strip()
    for copy, live in renames.items():
        text = text.replace(copy, live)
    return text


def strict_modes_entry(name, status, owner, group=None, primary=()):
    """One path of the StrictModes chain as the guard reads it: status is files.status (None: missing),
    owner the owner's name (or None), group the host/accounts Group where the path is group-writable."""
    if status is None:
        return {"path": name, "kind": None}
    kind, mode, uid, gid = status
    entry = {"path": name, "kind": kind, "mode": mode, "uid": uid, "gid": gid, "owner": owner}
    if mode & 0o020:
        entry["group"] = (
            None
            if group is None
            else {"name": group.name, "primary": list(primary), "members": list(group.members)}
        )
    return entry


def unknown_connection(conn, guard_on):
    """Warnings about what of the controller's connection is unknown; refused (Failed) with the guard on."""
    if not conn["missing"]:
        return []
    unknown = ", ".join(conn["missing"])
    if guard_on:
        raise refused(
            f"{unknown} of the controller's connection unknown (no SSH login found above this process):"
            " the guard cannot evaluate Port, ListenAddress and Match blocks against it; pass them"
            " (the role passes bulwark_controller) or, in an emergency, guard=false",
            refusals=[f"{unknown} unknown"],
        )
    return [f"{unknown} unknown: the candidate was evaluated as {plan.check_spec(conn)}"]


def needs_rsa(p, live):
    """Whether the RSA host key is regenerated: asked for, and the live one is missing or shorter."""
    return bool(p["rsa_host_key_bits"]) and live["rsa_bits"] < p["rsa_host_key_bits"]


def verdict(p, conn, eff, refusals, warnings):
    """Refuse (Failed) what the guard refused while it is on; else the warnings, extended."""
    if refusals and p["guard"]:
        raise refused(
            f"refusing an sshd configuration that would lock out {conn['user']}: " + "; ".join(refusals),
            refusals=refusals,
            effective=eff.as_dict(),
        )
    if refusals:
        warnings = [*warnings, "guard disabled; it would have refused: " + "; ".join(refusals)]
    return warnings


def outcome(p, live, eff, conn, *, candidate, mode, refusals, warnings, tools):
    """(result, want): what the run reports and what apply() must make true. candidate: (drop-in, main)
    texts; tools: {"sshd": path, "keygen": path}."""
    dropin, main = candidate
    warnings = verdict(p, conn, eff, refusals, warnings)
    warnings += plan.other_dropins_first(live["others"], os.path.basename(p["path"]), p["options"])
    regenerate = needs_rsa(p, live)
    moduli, moduli_summary = plan.moduli(live["moduli"], p["moduli_min_bits"])
    keys_summary = plan.host_keys_summary(
        live["rsa_bits"], p["rsa_host_key_bits"] if regenerate else live["rsa_bits"], live["remove"]
    )
    wrong_modes = [(path, old) for path, old in live["modes"].items() if old is not None and old != mode]
    diff = plan.diff(
        [(p["path"], live["dropin"], dropin), (p["main_config"], live["main"], main)],
        moduli_summary,
        keys_summary,
        wrong_modes,
        mode,
    )
    result = {
        "changed": bool(diff),
        "pending": False,
        "diff": diff,
        "effective": eff.as_dict(),
        "refusals": refusals,
        "reloaded": False,
        "host_keys": keys_summary,
        "warnings": warnings,
    }
    want = {
        "dropin": dropin,
        "main": main,
        "mode": mode,
        "wrong_modes": wrong_modes,
        "regenerate_rsa": regenerate,
        "moduli": moduli,
        "sshd": tools["sshd"],
        "keygen": tools["keygen"],
        "targets": plan.wait_targets(eff, conn["laddr"], conn["lport"]),
    }
    return result, want


def predicted_install(p, mode):
    """Check mode on a fresh host whose openssh-server the same run installs: predicted, not failed."""
    dropin = plan.candidate(p["options"], p["match"], "", p["path"])[0]
    return {
        "changed": True,
        "pending": False,
        "diff": plan.diff([(p["path"], None, dropin)], None, plan.host_keys_summary(0, 0, []), [], mode),
        "effective": {},
        "refusals": [],
        "reloaded": False,
        "host_keys": {},
        "warnings": ["sshd is not installed yet: the drop-in was rendered but not validated"],
    }


def rolled_back_warning(when):
    return f"an earlier unconfirmed sshd change was rolled back by the host ({when})"


def settled_notes(settled):
    """The warnings of what commit-confirm's settle (or predict) finished or found."""
    return settled.notes + ([rolled_back_warning(settled.rolled_back)] if settled.rolled_back else [])


def predicted(result, settled, pending):
    """Check mode: the change, whether an earlier one still waits for its confirmation (pending), and what
    the real run finishes first (settled: commit_confirm's predict())."""
    result["warnings"].extend(settled_notes(settled))
    result["pending"] = pending
    result["changed"] = result["changed"] or pending or settled.changed
    return result


def strict_modes_paths(real, home):
    """The paths sshd's safe_path() checks from a keys file's canonical path up to the home's (guard's)."""
    return guard.strict_modes_paths(real, home) if real else []


def apply_plan(p, live, want, regenerate=None):
    """The change as host operations, in order: the files, their modes (never through a link), the host
    keys removed, the RSA key (`regenerate`: the host layer's function, called with its path, type and
    size), the moduli, `sshd -t` of the live files, the reload. The restore is commit-confirm's
    (restore_steps), not these operations' inverses."""
    mode, ops = want["mode"], []
    if live["dropin"] != want["dropin"]:
        # A host without sshd_config.d gets it, below the directory of the main config.
        anchor = os.path.dirname(os.path.dirname(p["path"]))
        ops.append(_write(p["path"], want["dropin"], mode, make_dirs=0o755, anchor=anchor))
    if live["main"] != want["main"]:
        ops.append(_write(p["main_config"], want["main"], mode))
    ops += [
        host_plan.Attributes(path, mode, what=f"set the mode of {path}") for path, _old in want["wrong_modes"]
    ]
    ops += [host_plan.Remove(path, what=f"remove {path}") for path in live["remove"]]
    if want["regenerate_rsa"]:
        key, bits = plan.HOST_KEY.format("rsa"), p["rsa_host_key_bits"]
        ops.append(host_plan.Call(regenerate, (key, "rsa", bits), f"regenerate {key} ({bits} bits)"))
    if want["moduli"] is not None:
        ops.append(_write(plan.MODULI, want["moduli"], 0o644))
    ops.append(host_plan.Command((want["sshd"], "-t"), what="sshd -t of the live configuration"))
    if want["reload"]:
        ops.append(host_plan.Unit("reload", p["service"], what=f"reloading {p['service']}"))
    return host_plan.Plan().add(*ops)


def backup_ops(p, live):
    """Keep the last confirmed files (root-only, in backup_dir) for the restore steps to copy back."""
    dropin = os.path.join(p["backup_dir"], "dropin")
    main = os.path.join(p["backup_dir"], "sshd_config")
    ops = [_write(main, live["main"], live["modes"][p["main_config"]], what=f"keep {p['main_config']}")]
    if live["dropin"] is None:
        return [*ops, host_plan.Remove(dropin, what=f"forget a kept {p['path']}")]
    return [*ops, _write(dropin, live["dropin"], live["modes"][p["path"]], what=f"keep {p['path']}")]


def _write(path, content, mode, what=None, **options):
    return host_plan.Write(path, content, mode, -1, -1, what=what or f"write {path}", **options)
