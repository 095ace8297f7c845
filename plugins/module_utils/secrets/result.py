"""What the secret store returns: metadata summaries, the diff, what was revoked and reported (pure; never a
value: the module redacts every text besides)."""

import json

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import report, rotation


def summary(meta):
    return {
        "type": meta["type"],
        "state": meta["state"],
        "version": meta["current"]["version"],
        "accepted": rotation.accepted(meta),
        "created": meta["current"]["created"],
        "expires": meta["current"]["expires"],
        "fingerprint": meta["current"]["fingerprint"],
        "consumers": meta["consumers"],
        "revoke_after": rotation.iso(meta["revoke_after"]) if meta["revoke_after"] else None,
    }


def supplied_values(params):
    """The secret values the module is given (the token, the controller's store): masked like drawn ones."""
    found = [params.get("vault_token")]
    for entry in (params.get("store_values") or {}).values():
        if isinstance(entry, dict):
            found += [*(entry.get("versions") or {}).values(), entry.get("candidate")]
    return [value for value in found if isinstance(value, str)]


def _extra(params, check_mode, after):
    extra = {}
    if not check_mode:
        # What the role acknowledges once it has shown this result: until then, the next run reports these
        # transitions as done while nobody was listening (a killed ansible-playbook never shows it).
        extra["acknowledge"] = {
            name: rotation.last_seq(meta)
            for name, meta in after.items()
            if rotation.last_seq(meta) > int(meta.get("reported_seq") or 0)
        }
    if params["backend"] == "ansible_vault":
        extra["versions"] = {
            name: {str(entry["version"]): entry["fingerprint"] for entry in rotation.entries(meta)}
            for name, meta in after.items()
        }
    return extra


def _meanwhile(before, run_id):
    return sorted(
        (
            {"secret": name, **item}
            for name, meta in before.items()
            if meta
            for item in rotation.unreported(meta, run_id)
        ),
        key=lambda item: (item["at"], item["secret"], item["seq"]),
    )


def outcome(params, check_mode, run, *, before, after, found):
    """The module's result of a run that went to its end. before, after: name -> metadata (None: none yet);
    found: the validate report of the secrets as found."""
    was = {name: summary(meta) for name, meta in before.items() if meta}
    now = {name: summary(meta) for name, meta in after.items()}
    header = f"{params['directory']} (metadata; values are never shown)"
    return {
        **_extra(params, check_mode, after),
        "changed": run.changed,
        "secrets": now,
        "steps": run.steps,
        "revoked": {name: sorted(versions) for name, versions in run.revoked.items()},
        "kept_overlap": {
            name: {
                "accepted": rotation.accepted(after[name]),
                "until": rotation.iso(after[name]["revoke_after"]) if after[name]["revoke_after"] else None,
            }
            for name in sorted(set(params["keep_overlap"]))
        },
        "meanwhile": _meanwhile(before, run.run_id),
        "run": run.run_id,
        "reloaded": run.reloaded,
        "report": found,
        "problems": report.summary(found),
        "diff": {
            "before": json.dumps(was, indent=2, sort_keys=True) + "\n",
            "after": json.dumps(now, indent=2, sort_keys=True) + "\n",
            "before_header": header,
            "after_header": header,
        },
    }
