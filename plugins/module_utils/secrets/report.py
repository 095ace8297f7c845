"""The validate report: per declared secret, its metadata and what is wrong with it (pure).

The audit reads it; it carries versions, dates and fingerprints, never a value.
"""

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import rotation

KINDS = (
    "missing",
    "does not meet the policy",
    "too old",
    "readable by others",
    "not rotated since the compromise date",
)


def entry(spec, meta, now, *, meets=True, modes=None, compromised_since=None):
    """One secret's report. modes: path -> permission bits of its files (store and consumers)."""
    if meta is None:
        return {"name": spec["name"], "type": spec["type"], "state": "missing", "problems": ["missing"]}
    current = meta["current"]
    problems = []
    if not meets:
        problems.append("does not meet the policy (too short, wrong alphabet or too weak a key)")
    age = rotation.age_days(meta, now)
    if age >= spec["max_age_days"]:
        problems.append(f"too old: {age} days, the maximum is {spec['max_age_days']}")
    for path, mode in sorted((modes or {}).items()):
        if mode is not None and mode & 0o007:
            problems.append(f"readable by others: {path} (mode {mode:04o})")
    created = rotation.parse_time(current["created"])
    if compromised_since is not None and created < compromised_since:
        problems.append(f"not rotated since the compromise date {rotation.iso(compromised_since)}")
    return {
        "name": spec["name"],
        "type": spec["type"],
        "state": meta["state"],
        "version": current["version"],
        "created": current["created"],
        "expires": current["expires"],
        "age_days": age,
        "fingerprint": current["fingerprint"],
        "consumers": list(meta.get("consumers", [])),
        "problems": problems,
    }


def summary(entries):
    """Names of the secrets with problems, by problem kind."""
    result = {}
    for item in entries:
        for problem in item["problems"]:
            kind = next(k for k in KINDS if problem.startswith(k))
            result.setdefault(kind, []).append(item["name"])
    return result
