"""The rotation state machine and what consumers get in each state (pure).

stable --stage--> staged --accept--> dual --promote--> promoted --(overlap elapsed) revoke--> stable

- stage: a new version is generated and stored; consumers see nothing of it yet.
- accept (dual-accept): consumers get both versions to accept (the JWK set holds old and new);
  signers still use the old one.
- promote: signers switch to the new version; the old one is still accepted until `revoke_after`.
- revoke: consumers accept only the new version. The old one stays in the store (never distributed) so
  that a rollback can bring it back.
- rollback: the previous version becomes current again, promoted, both accepted for the overlap. From
  stable, where consumers accept the current version only, it goes through dual-accept first (the
  previous version staged back), so that no signer switches before every consumer accepts it.

An incident (incident_steps) takes every secret to a version drawn by this run and revokes every version
accepted before, in the same run: a secret in its overlap window has its previous version revoked at once
before the new one is staged, a staged or dual-accepted version is replaced by a fresh one (restage), and
the promotion of an incident's version has no overlap (its `revoke_after` is the promotion's time, recorded,
so a resumed run revokes at once too).

Each step is also appended to the metadata's `transitions` (time, step, version, the run that did it), so
that a run whose controller went away (the module runs on to the end) is reported by the next run:
`unreported` lists the transitions of other runs after `reported_seq`, which the controller acknowledges
once it has the result (`acknowledge`).

Every step is recorded in the metadata before its effects (files, reloads) happen, and those effects
are a pure function of the metadata, so a run killed at any point resumes at the recorded step: it
writes the same files again and reloads the consumers still listed in `reload_pending`.
Metadata holds versions, dates and fingerprints only, never a value.
"""

import copy
import datetime

STATES = ("stable", "staged", "dual", "promoted")
KEY_PAIRS = ("rsa", "ed25519")
# What a state needs besides `current` (a damaged or foreign metadata file is refused, never guessed at).
_NEEDS = {"staged": ("next",), "dual": ("next",), "promoted": ("previous", "revoke_after")}
TRANSITIONS_KEPT = 64  # the newest ones; older ones were reported long ago
_META_KEYS = (
    "name", "type", "consumers", "state", "latest",
    "current", "next", "previous", "revoke_after", "rolled_back",
)  # fmt: skip


class StateError(ValueError):
    """Stored metadata that the rotation cannot continue from; the message names the secret."""


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


def incident_steps(meta, keep_overlap=False):
    """The steps an incident takes on a secret before the rounds (each then advances it to the end).

    Every accepted version is suspect, so the secret ends on a version drawn by this run with nothing else
    accepted: in the overlap window (promoted) the previous version is revoked at once, then a new one is
    staged; a staged or dual-accepted version (drawn before the incident) is replaced by a fresh one; a
    stable secret stages a fresh one. keep_overlap (the operator's explicit exception): a stable secret is
    rotated with its usual overlap, one in progress continues as it would without the incident.
    """
    state = meta["state"]
    if keep_overlap:
        return ["stage"] if state == "stable" else []
    return {"stable": ["stage"], "promoted": ["revoke", "stage"]}.get(state, ["restage"])


def rollback_refused(meta):
    """Why `meta` cannot be rolled back (a text), or None. The previous version of a secret that an incident
    rotated is the suspect one the incident revoked: bringing it back would undo the incident."""
    if meta["state"] not in ("stable", "promoted") or meta["previous"] is None:
        missing = " without a previous version" if meta["previous"] is None else ""
        return f"it cannot be rolled back in state {meta['state']}{missing}"
    version = meta["previous"]["version"]
    if version in meta.get("suspect", []):
        return f"its previous version {version} was revoked by an incident rotation and is never brought back"
    return None


def no_longer_accepted(before, after):
    """The versions consumers accepted before a step and do not after it (what the step revoked)."""
    return sorted(set(accepted(before)) - set(accepted(after)))


def _promoted(current, previous, now, overlap):
    """Signers use `current`; `previous` is still accepted for the overlap."""
    return {
        "state": "promoted",
        "current": current,
        "previous": previous,
        "next": None,
        "revoke_after": now + overlap,
    }


def advance(meta, step, now, spec, new=None, *, incident=False):
    """The metadata after `step` (a new dict); new is the version metadata that 'stage' and 'restage'
    store; incident: the staged version is promoted without an overlap."""
    result = copy.deepcopy(meta)
    state = meta["state"]
    allowed = {"stage": "stable", "accept": "staged", "promote": "dual", "revoke": "promoted"}
    if step == "restage":  # an incident replaces a version drawn before it, never used by a signer
        if state not in ("staged", "dual"):
            raise ValueError(f"{meta['name']}: cannot restage in state {state}")
        result.update(state="staged", next=new, latest=new["version"], rolled_back=False, incident=True)
        if state == "dual":  # consumers accepted the replaced version: they drop it
            result["reload_pending"] = list(spec["consumers"])
        return result
    if step == "rollback":
        if meta["previous"] is None:
            raise ValueError(f"{meta['name']}: no previous version to roll back to")
        if state not in ("stable", "promoted"):
            raise ValueError(f"{meta['name']}: cannot roll back in state {state}")
        if state == "stable":
            # Consumers accept the current version only: they accept the previous one again before any
            # signer switches to it (the next round promotes it).
            result.update(state="dual", next=meta["previous"], rolled_back=True)
        else:
            result.update(
                _promoted(meta["previous"], meta["current"], now, spec["overlap"]), rolled_back=True
            )
    elif allowed.get(step) != state:
        raise ValueError(f"{meta['name']}: cannot {step} in state {state}")
    elif step == "stage":
        result.update(state="staged", next=new, latest=new["version"], rolled_back=False, incident=incident)
        return result  # consumers see nothing of a staged version
    elif step == "accept":
        result["state"] = "dual"
    elif step == "promote":
        overlap = 0 if meta.get("incident") else spec["overlap"]
        result.update(_promoted(meta["next"], meta["current"], now, overlap))
        if meta.get("incident"):  # what signed before the incident is suspect: never brought back
            result["suspect"] = sorted({*meta.get("suspect", []), meta["current"]["version"]})
    else:
        result.update(state="stable", revoke_after=None, incident=False)
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


def public_order(meta):
    """The accepted versions in the order of NAME.pub's PEM bundle: the signing (current) one first, so
    that a reader taking the first key only reads the signing key; then the others, newest first."""
    current = meta["current"]["version"]
    return [current] + [version for version in accepted(meta) if version != current]


def with_transition(meta, step, version, now, run):
    """The metadata with one more transition recorded (a new dict): what, which version, when, which run."""
    result = copy.deepcopy(meta)
    transitions = list(result.get("transitions") or [])
    seq = transitions[-1]["seq"] + 1 if transitions else int(result.get("reported_seq") or 0) + 1
    transitions.append({"seq": seq, "step": step, "version": version, "at": iso(now), "run": run})
    result["transitions"] = transitions[-TRANSITIONS_KEPT:]
    return result


def unreported(meta, run):
    """The transitions of other runs than `run` that no controller acknowledged (a cancelled run's)."""
    done = int(meta.get("reported_seq") or 0)
    return [item for item in meta.get("transitions") or [] if item["seq"] > done and item["run"] != run]


def last_seq(meta):
    transitions = meta.get("transitions") or []
    return transitions[-1]["seq"] if transitions else int(meta.get("reported_seq") or 0)


def acknowledge(meta, seq):
    """The metadata once a controller has the result that reported the transitions up to `seq`."""
    result = copy.deepcopy(meta)
    result["reported_seq"] = max(int(meta.get("reported_seq") or 0), min(seq, last_seq(meta)))
    return result


def entries(meta):
    """The versions the store keeps (current, previous for a rollback, a staged next); others go."""
    return [entry for entry in (meta["current"], meta["previous"], meta["next"]) if entry]


def kept(meta):
    return {entry["version"] for entry in entries(meta)}


def file_names(spec):
    """What a consumer directory may get of a secret, by role (the accepted values, the active one, ...).

    The one derivation of these names: deliverables() writes them, the policy refuses two secrets whose
    names meet in one directory. No step changes both the active value and the set of accepted ones
    (dual-accept, then promote, then revoke), so the order of the writes never matters.
    """
    name = spec["name"]
    if spec["type"] in KEY_PAIRS:
        return {"accept": f"{name}.jwks.json", "active": f"{name}.key", "public": f"{name}.pub"}
    names = {"accept": f"{name}.accept", "active": name}
    if "postgresql" in spec:
        names["pgpass"] = f"{name}.pgpass"
    return names


def consumer_files(spec, consumer):
    """role -> file name of what this consumer gets: a key pair's private key (active) goes to its
    signers only; a verifier gets the public keys (NAME.pub, NAME.jwks.json)."""
    names = file_names(spec)
    if spec["type"] in KEY_PAIRS and consumer not in spec.get("signers", []):
        del names["active"]
    return names


def deliverables(spec, meta, values, public_pem, jwks):
    """File name -> content of every file a consumer of the secret may get. values: version -> value."""
    names = file_names(spec)
    active = values[meta["current"]["version"]]
    accept = [values[version] for version in accepted(meta)]
    if spec["type"] in KEY_PAIRS:
        bundle = "".join(public_pem(values[version]) for version in public_order(meta))
        contents = {"accept": jwks(accept), "active": active, "public": bundle}
    else:
        contents = {"accept": "".join(value + "\n" for value in accept), "active": active + "\n"}
    if "postgresql" in spec:
        # libpq's password file: the active login role and its password in one file, read at once.
        port = spec["postgresql"]["port"]
        contents["pgpass"] = f"*:{port}:*:{meta['current']['login']}:{active}\n"
    return {names[role]: contents[role] for role in names}


def _damaged(name, what):
    return StateError(f"{name}: the stored metadata {what}: the store is damaged")


def check_meta(name, meta):
    """The stored metadata of secret `name` if the rotation can continue from it; else StateError saying
    what is wrong. An unknown state is refused: continuing from a guess could skip dual-accept."""
    if not isinstance(meta, dict):
        raise _damaged(name, f"is a {type(meta).__name__}, not a mapping")
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
        raise _damaged(name, f"has no {', '.join(missing)}")
    if meta["name"] != name:
        raise _damaged(name, f"names another secret ({str(meta['name'])[:64]!r})")
    state = meta["state"]
    if state not in STATES:
        raise _damaged(
            name,
            f"has an unknown rotation state {str(state)[:32]!r} (known: {', '.join(STATES)}); refusing to"
            " guess where the rotation stands",
        )
    for key in ("current", *_NEEDS.get(state, ())):
        if meta[key] is None:
            raise _damaged(name, f"is in state {state} without {key}")
    for key in ("current", "next", "previous"):
        if meta[key] is not None:
            _check_entry(name, key, meta[key])
    _check_fields(name, meta)
    _check_records(name, meta)
    return meta


def _check_entry(name, key, entry):
    """One version's metadata (current, next or previous)."""
    if not isinstance(entry, dict):
        raise _damaged(name, f"{key} is a {type(entry).__name__}, not a mapping")
    number = entry.get("version")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise _damaged(name, f"{key}.version is not a version number")
    for field in ("created", "expires", "fingerprint"):
        if not isinstance(entry.get(field), str):
            raise _damaged(name, f"{key}.{field} is missing or not a text")
    try:
        parse_time(entry["created"])
    except ValueError:
        raise _damaged(name, f"{key}.created is not a time") from None


def _check_fields(name, meta):
    """The rotation's own fields: latest, rolled_back, revoke_after, the consumer lists, incident."""
    latest = meta["latest"]
    if isinstance(latest, bool) or not isinstance(latest, int) or latest < max(kept(meta)):
        raise _damaged(name, "latest is not the highest version number")
    if not isinstance(meta["rolled_back"], bool):
        raise _damaged(name, "rolled_back is not true or false")
    after = meta["revoke_after"]
    if after is not None and (isinstance(after, bool) or not isinstance(after, (int, float))):
        raise _damaged(name, "revoke_after is not a time")
    for key in ("consumers", "reload_pending"):
        names = meta.get(key, [])
        if not isinstance(names, list) or not all(isinstance(item, str) for item in names):
            raise _damaged(name, f"{key} is not a list of consumer names")
    if not isinstance(meta.get("incident", False), bool):
        raise _damaged(name, "incident is not true or false")


def _check_records(name, meta):
    """What the rotation remembers: the versions an incident revoked, its transitions, what was reported."""
    suspect = meta.get("suspect", [])
    if not isinstance(suspect, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in suspect
    ):
        raise _damaged(name, "suspect is not a list of version numbers")
    seq = meta.get("reported_seq", 0)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise _damaged(name, "reported_seq is not a number")
    transitions = meta.get("transitions", [])
    fields = {"seq": int, "step": str, "version": int, "at": str, "run": str}
    if not isinstance(transitions, list) or not all(
        isinstance(item, dict)
        and all(
            isinstance(item.get(key), kind) and not isinstance(item.get(key), bool)
            for key, kind in fields.items()
        )
        for item in transitions
    ):
        raise _damaged(name, "transitions is not a list of transitions")


def age_days(meta, now):
    return (now - parse_time(meta["current"]["created"])) // 86400
