"""The rotation as a pure transition function: a secret's metadata, the request and the time in, the steps it
takes and the metadata after each one out (rotation.py holds the states and what consumers get in each).

A run takes a secret through three phases, every secret in lockstep (secrets/run.py):
- "open": what a secret needs before the rounds: its first version (generate), a rollback, a rotation that
  is due or requested (stage);
- "incident": with rotate_all, the steps that leave nothing accepted from before the run
  (rotation.incident_steps);
- "round": one step that continues a rotation in progress (accept, promote, revoke once its window passed).
`steps()` decides them; `take()` is the transition itself: the metadata after the step (with the step recorded
in its transitions), the words the operator reads and the versions the step revoked. A step that draws a new
version (generate, stage, restage) is given that version's metadata; the value itself never comes here.
Nothing here touches the host.
"""

import dataclasses

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import policy, rotation

PHASES = ("open", "incident", "round")
DRAWS = ("generate", "stage", "restage")


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a secret: its name (rotation's words), why, and whether an incident drew it."""

    step: str
    reason: str = None
    incident: bool = False

    @property
    def draws(self):
        """The step stores a new version (drawn by the run before the step is taken)."""
        return self.step in DRAWS


@dataclasses.dataclass(frozen=True)
class Transition:
    meta: dict
    words: str
    revoked: list


def _opening(spec, meta, request, now, meets):
    name = spec["name"]
    if meta is None:
        return [Step("generate")]
    if name in request["rollback"] and not meta["rolled_back"]:
        refused = rotation.rollback_refused(meta)
        if refused:
            raise policy.SecretSpecError(f"rollback: {name}: {refused}")
        return [Step("rollback")]  # a rolled back secret is in dual or promoted: nothing is due there
    if request["all"]:
        return []  # the incident phase takes its steps
    reason = rotation.due(
        spec,
        meta,
        now,
        requested=name in request["rotate"],
        meets=meets,
        compromised_since=request["compromised_since"] if request["due"] else None,
    )
    # Age and compromise rotate only when asked (rotate_due); a value below a raised policy always does.
    if reason and reason.startswith("older than") and not request["due"]:
        reason = None
    return [Step("stage", reason)] if reason else []


def _incident(meta, keep_overlap):
    reason = "forced, overlap kept by keep_overlap" if keep_overlap else "incident"
    return [
        Step("revoke", "incident") if todo == "revoke" else Step(todo, reason, incident=not keep_overlap)
        for todo in rotation.incident_steps(meta, keep_overlap)
    ]


def steps(meta, request, now, spec, *, phase, meets=True):
    """The steps of `phase` for a secret whose metadata is `meta` (None: not generated yet), in order.

    request: {rotate, rollback, keep_overlap (sets of names), all, due (bools), compromised_since (epoch or
    None)}; meets: whether the current value meets the policy. A rollback an incident forbids is refused,
    naming the secret and the version (SecretSpecError)."""
    if phase == "open":
        return _opening(spec, meta, request, now, meets)
    if phase == "incident":
        return _incident(meta, spec["name"] in request["keep_overlap"])
    if phase == "round":
        step = rotation.next_step(meta, now)
        return [Step(step)] if step else []
    raise ValueError(f"phase {phase!r} is not one of {', '.join(PHASES)}")


def take(meta, step, now, spec, *, run, new=None):
    """The Transition of `meta` by `step` (a Step): the metadata after it, its words, the versions it revoked.
    new: the metadata of the version a drawing step stores; run: the id recorded with the transition."""
    if step.step == "generate":
        after = rotation.initial(spec, new)
        words = f"{spec['name']}: generate version {new['version']}"
        return Transition(rotation.with_transition(after, "generate", new["version"], now, run), words, [])
    back_to = meta["previous"]["version"] if meta["previous"] else None
    replaced = meta["next"]["version"] if meta["next"] else None
    after = rotation.advance(meta, step.step, now, spec, new, incident=step.incident)
    # The version a step is about: the one staged or accepted, the one revoked, else the current one.
    about = {"stage": "next", "restage": "next", "accept": "next", "revoke": "previous"}
    version = after[about.get(step.step, "current")]["version"]
    reason = step.reason
    if step.step == "rollback":
        version = back_to
        if after["state"] == "dual":  # from stable: consumers accept it again before it is promoted
            reason = f"accept versions {rotation.accepted(after)} first"
    words = {
        "stage": f"stage version {version} ({reason})",
        "accept": f"accept versions {rotation.accepted(after)}",
        "promote": f"promote version {version}",
        "restage": f"replace staged version {replaced} by version {version} ({reason})",
        "revoke": f"revoke version {version}" + (f" ({reason})" if reason else ""),
        "rollback": f"roll back to version {version}" + (f" ({reason})" if reason else ""),
    }[step.step]
    recorded = rotation.with_transition(after, step.step, version, now, run)
    return Transition(recorded, f"{spec['name']}: {words}", rotation.no_longer_accepted(meta, after))


def revoke_waits(metas, now, limit):
    """Secret name -> seconds until its window ends, for the promoted secrets a run may wait for (limit)."""
    waits = {name: meta["revoke_after"] - now for name, meta in metas.items() if meta["state"] == "promoted"}
    return {name: wait for name, wait in waits.items() if 0 < wait <= limit}


def waiting_words(metas, waits):
    """What check mode reports of the revocations a run would wait for."""
    return [
        f"{name}: revoke version {metas[name]['previous']['version']} in {int(wait)} s"
        for name, wait in sorted(waits.items())
    ]
