"""The ansible_vault backend's store on the controller (pure: the document, never its encryption).

One document per host, kept encrypted by the action plugin with ansible-vault:
``{"secrets": {NAME: {"versions": {"N": value}, "candidate": value, "meta": {...}}}}``.
- ``versions``: the values of the versions the host's metadata keeps (current, previous, staged);
- ``candidate``: the value the next version will take, drawn (OS random, ``cryptography``) and recorded
  before the run that may use it, so that a run killed after staging resumes with the same value;
- ``meta``: the module's metadata summary of the secret after the last run (never a value).
The host knows versions by fingerprint only; the module returns number -> fingerprint of what it keeps.
"""

import json

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate


def parse(text):
    """The document from its decrypted text (None: a new store)."""
    if text is None:
        return {"secrets": {}}
    document = json.loads(text)
    if not isinstance(document, dict) or not isinstance(document.get("secrets"), dict):
        raise ValueError("not a bulwark secrets store")
    for name, entry in document["secrets"].items():
        versions = entry.get("versions") if isinstance(entry, dict) else None
        if not isinstance(versions, dict) or not all(
            isinstance(number, str) and number.isdigit() and isinstance(value, str)
            for number, value in versions.items()
        ):
            raise ValueError(f"{name}: versions is not a mapping of version numbers to values")
        if entry.get("candidate") is not None and not isinstance(entry["candidate"], str):
            raise ValueError(f"{name}: candidate is not a value")
    return document


def dumps(document):
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def with_candidates(document, specs):
    """The document with a candidate meeting its policy for every declared secret (a new dict)."""
    result = json.loads(json.dumps(document))
    for name, spec in specs.items():
        entry = result["secrets"].setdefault(name, {"versions": {}, "candidate": None, "meta": None})
        if not entry.get("candidate") or not generate.meets(spec, entry["candidate"]):
            entry["candidate"] = generate.generate(spec)
    return result


def values_for(document, specs):
    """What the module is given for the declared secrets: their versions and candidates."""
    found = {}
    for name in specs:
        entry = document["secrets"].get(name) or {}
        found[name] = {"versions": dict(entry.get("versions") or {}), "candidate": entry.get("candidate")}
    return found


def after_run(document, specs, versions, summaries):
    """The document after a run: each secret keeps the values of the versions the host keeps (matched by
    fingerprint), a candidate taken becomes a version (and a new one is drawn), and the metadata summary
    is recorded."""
    result = json.loads(json.dumps(document))
    for name, kept in versions.items():
        entry = result["secrets"][name]
        spec = specs[name]
        known = list((entry.get("versions") or {}).values())
        if entry.get("candidate"):
            known.append(entry["candidate"])
        by_print = {generate.fingerprint(spec, value): value for value in known}
        missing = [number for number, mark in kept.items() if mark not in by_print]
        if missing:
            raise ValueError(f"{name}: version {missing[0]} is on the host but not in the store")
        entry["versions"] = {number: by_print[mark] for number, mark in sorted(kept.items())}
        if entry.get("candidate") in entry["versions"].values():
            # Drawn now, so that the next run starts without writing the store.
            entry["candidate"] = generate.generate(spec)
        entry["meta"] = summaries.get(name)
    return result
