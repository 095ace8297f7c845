"""The ansible_vault backend's document on the controller: candidates drawn ahead, versions by print."""

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import (
    controller_store,
    generate,
    policy,
)

SPECS, _UNUSED = policy.normalise(
    [{"name": "db", "type": "password", "length": 40}, {"name": "jwt", "type": "ed25519"}], {}
)


def test_a_new_store_gets_a_candidate_per_secret_meeting_its_policy():
    document = controller_store.with_candidates(controller_store.parse(None), SPECS)
    assert set(document["secrets"]) == {"db", "jwt"}
    for name, spec in SPECS.items():
        entry = document["secrets"][name]
        assert entry["versions"] == {} and generate.meets(spec, entry["candidate"])
    # Kept while it meets the policy: a run that changes nothing does not rewrite the store.
    assert controller_store.with_candidates(document, SPECS) == document


def test_a_candidate_below_a_raised_policy_is_drawn_again():
    document = controller_store.with_candidates(controller_store.parse(None), SPECS)
    raised, _unused = policy.normalise([{"name": "db", "type": "password", "length": 64}], {})
    again = controller_store.with_candidates(document, raised)
    assert len(again["secrets"]["db"]["candidate"]) == 64


def test_after_a_run_the_taken_candidate_is_a_version_and_a_new_one_is_drawn():
    document = controller_store.with_candidates(controller_store.parse(None), SPECS)
    first = document["secrets"]["db"]["candidate"]
    mark = generate.fingerprint(SPECS["db"], first)
    versions = {"db": {"1": mark}, "jwt": {}}
    after = controller_store.after_run(document, SPECS, versions, {"db": {"version": 1}})
    entry = after["secrets"]["db"]
    assert entry["versions"] == {"1": first} and entry["meta"] == {"version": 1}
    assert entry["candidate"] not in (None, first) and generate.meets(SPECS["db"], entry["candidate"])
    # A rotation: version 2 from the new candidate, version 1 kept while the host keeps it, then dropped.
    second = entry["candidate"]
    rotated = {"db": {"1": mark, "2": generate.fingerprint(SPECS["db"], second)}, "jwt": {}}
    after = controller_store.after_run(after, SPECS, rotated, {})
    assert after["secrets"]["db"]["versions"] == {"1": first, "2": second}
    later = controller_store.after_run(after, SPECS, {"db": {"2": rotated["db"]["2"]}, "jwt": {}}, {})
    assert later["secrets"]["db"]["versions"] == {"2": second}
    assert controller_store.values_for(later, SPECS)["db"] == {
        "versions": {"2": second},
        "candidate": later["secrets"]["db"]["candidate"],
    }


def test_a_version_the_store_does_not_hold_is_an_error_not_a_loss():
    document = controller_store.with_candidates(controller_store.parse(None), SPECS)
    with pytest.raises(ValueError, match="db: version 3 is on the host but not in the store"):
        controller_store.after_run(document, SPECS, {"db": {"3": "sha256:0"}}, {})


def test_the_document_round_trips_and_a_foreign_one_is_refused():
    document = controller_store.with_candidates(controller_store.parse(None), SPECS)
    assert controller_store.parse(controller_store.dumps(document)) == document
    with pytest.raises(ValueError, match="not a bulwark secrets store"):
        controller_store.parse('{"db": "x"}')
