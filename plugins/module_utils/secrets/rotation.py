"""The rotation state machine and what consumers get in each state (pure).

stable --stage--> staged --accept--> dual --promote--> promoted --(overlap elapsed) revoke--> stable

- stage: a new version is generated and stored; consumers see nothing of it yet.
- accept (dual-accept): consumers get both versions to accept (the JWK set holds old and new);
  signers still use the old one.
- promote: signers switch to the new version; the old one is still accepted until `revoke_after`.
- revoke: consumers accept only the new version. The old one stays in the store (never distributed) so
  that a rollback can bring it back.
- rollback: the previous version becomes current again, promoted, both accepted for the overlap.

Every step is recorded in the metadata before its effects (files, reloads) happen, and those effects
are a pure function of the metadata, so a run killed at any point resumes at the recorded step: it
writes the same files again and reloads the consumers still listed in `reload_pending`.
Metadata holds versions, dates and fingerprints only, never a value.
"""

import copy
import datetime

STATES = ("stable", "staged", "dual", "promoted")


def iso(now):
    return datetime.datetime.fromtimestamp(int(now), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    """Epoch seconds of an ISO 8601 UTC time (a date alone means its midnight), or ValueError."""
    text = str(text).strip()
    if len(text) == 10:
        text += "T00:00:00Z"
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return int(value.timestamp())


def version_meta(spec, version, fingerprint, now):
    return {
        "version": version,
        "created": iso(now),
        "expires": iso(now + spec["max_age_days"] * 86400),
        "fingerprint": fingerprint,
    }


def initial(spec, first):
    """Metadata of a secret whose first version was just generated."""
    return {
        "name": spec["name"],
        "type": spec["type"],
        "consumers": list(spec["consumers"]),
        "state": "stable",
        "latest": first["version"],
        "current": first,
        "next": None,
        "previous": None,
        "revoke_after": None,
        "rolled_back": False,
        "reload_pending": list(spec["consumers"]),
    }


def due(spec, meta, now, *, requested=False, force=False, meets=True, compromised_since=None):
    """Why a stable secret must be rotated now, or None. Only a stable secret starts a rotation."""
    if meta["state"] != "stable":
        return None
    if force:
        return "forced"
    if requested:
        return "requested"
    if not meets:
        return "does not meet the policy"
    created = parse_time(meta["current"]["created"])
    if now - created >= spec["max_age_days"] * 86400:
        return f"older than {spec['max_age_days']} days"
    if compromised_since is not None and created < compromised_since:
        return "not rotated since the compromise date"
    return None


def next_step(meta, now):
    """The step that continues a rotation in progress ('accept', 'promote', 'revoke'), or None."""
    state = meta["state"]
    if state == "staged":
        return "accept"
    if state == "dual":
        return "promote"
    if state == "promoted" and now >= meta["revoke_after"]:
        return "revoke"
    return None


def advance(meta, step, now, spec, new=None):
    """The metadata after `step` (a new dict); new is the version metadata that 'stage' stores."""
    result = copy.deepcopy(meta)
    state = meta["state"]
    allowed = {"stage": "stable", "accept": "staged", "promote": "dual", "revoke": "promoted"}
    if step == "rollback":
        if meta["previous"] is None:
            raise ValueError(f"{meta['name']}: no previous version to roll back to")
        result.update(
            state="promoted",
            current=meta["previous"],
            previous=meta["current"],
            next=None,
            revoke_after=now + spec["overlap"],
            rolled_back=True,
        )
    elif allowed.get(step) != state:
        raise ValueError(f"{meta['name']}: cannot {step} in state {state}")
    elif step == "stage":
        result.update(state="staged", next=new, latest=new["version"])
        return result  # consumers see nothing of a staged version
    elif step == "accept":
        result["state"] = "dual"
    elif step == "promote":
        result.update(
            state="promoted",
            previous=meta["current"],
            current=meta["next"],
            next=None,
            revoke_after=now + spec["overlap"],
            rolled_back=False,
        )
    else:
        result.update(state="stable", revoke_after=None)
    result["consumers"] = list(spec["consumers"])
    result["reload_pending"] = list(spec["consumers"])
    return result


def accepted(meta):
    """Versions consumers accept, newest first."""
    state = meta["state"]
    if state == "dual":
        return [meta["next"]["version"], meta["current"]["version"]]
    if state == "promoted":
        return [meta["current"]["version"], meta["previous"]["version"]]
    return [meta["current"]["version"]]


def entries(meta):
    """The versions the store keeps (current, previous for a rollback, a staged next); others go."""
    return [entry for entry in (meta["current"], meta["previous"], meta["next"]) if entry]


def kept(meta):
    return {entry["version"] for entry in entries(meta)}


def deliverables(spec, meta, values, public_pem, jwks):
    """File name -> content for each consumer of the secret. values: version -> value text."""
    name = spec["name"]
    active = values[meta["current"]["version"]]
    accept = [values[version] for version in accepted(meta)]
    if spec["type"] in ("rsa", "ed25519"):
        return {
            f"{name}.key": active,
            f"{name}.pub": public_pem(active),
            f"{name}.jwks.json": jwks(accept),
        }
    result = {name: active + "\n", f"{name}.accept": "".join(value + "\n" for value in accept)}
    if "postgresql" in spec:
        # libpq's password file: the active login role and its password in one file, read at once.
        port = spec["postgresql"]["port"]
        result[f"{name}.pgpass"] = f"*:{port}:*:{meta['current']['login']}:{active}\n"
    return result


def age_days(meta, now):
    return (now - parse_time(meta["current"]["created"])) // 86400
