"""An incident rotation (rotate_all) during an overlap window, killed at every host operation, then run again.

From db in its overlap window (version 2 signs, version 1 still accepted for a day), the incident revokes
version 1 at once, stages a fresh version 3, has every consumer accept it, promotes it and revokes version 2,
all in one run. Killed just before each operation and run again as an operator would (the incident again):
at the cut every consumer's active value is accepted by every consumer; at every reload what the consumers
run accept one another's values; and at the end nothing drawn before the incident is accepted anywhere,
the metadata is stable on a version newer than 2, and no value is in any result, stderr or operations log.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
from test_secrets_rotation_kill import CONSUMERS, Scenario

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import rotation


class InWindow(Scenario):
    """The rotation-kill scenario with a day of overlap: a rotation stays promoted."""

    def args(self, **changes):
        result = super().args(**changes)
        result["secrets"] = [{**result["secrets"][0], "overlap": 86400}]
        return result


@pytest.fixture
def in_window(tmp_path, run_module):
    """db promoted: version 2 active, versions 2 and 1 accepted by both consumers."""
    first = InWindow(tmp_path / "template", run_module)
    assert first.run().rc == 0
    done = first.run(rotate=["db"])
    assert done.rc == 0 and first.meta()["state"] == "promoted", done
    (first.root / "loads").unlink()
    return first.root


def start(tmp_path, run_module, template, name):
    scenario = InWindow(tmp_path / name, run_module, template)
    scenario.before = set(scenario.versions())  # every value drawn before the incident
    scenario.start = {consumer: scenario.consumer(consumer) for consumer in CONSUMERS}
    return scenario


def assert_each_reload_consistent(scenario, where):
    """At every reload, each running consumer's active value is accepted by every running consumer (by value:
    a staged version an incident replaced is no longer in the store to be named by its number)."""
    running = dict(scenario.start)
    for name, active, accept in scenario.loads():
        running[name] = (active, accept)
        for other, (other_active, _unused) in running.items():
            for reader, (_unused, reader_accept) in running.items():
                assert other_active in reader_accept, f"{where}: {reader} runs without {other}'s value"


def assert_nothing_from_before(scenario, where):
    meta = scenario.meta()
    assert (meta["state"], rotation.accepted(meta)) == ("stable", [meta["current"]["version"]]), where
    assert meta["current"]["version"] > 2, where
    for name in CONSUMERS:
        active, accept = scenario.consumer(name)
        assert active not in scenario.before and not set(accept) & scenario.before, f"{where}: {name}"


def test_an_incident_killed_at_every_operation_revokes_everything_from_before_once_run_again(
    tmp_path, run_module, in_window
):
    clean = start(tmp_path, run_module, in_window, "clean")
    done = clean.run(rotate_all=True)
    assert done.rc == 0 and done.result["revoked"] == {"db": [1, 2]}, done
    # What each consumer runs, in order: v1 revoked at once, v3 accepted, promoted, v2 revoked.
    phases = [(2, [2]), (2, [3, 2]), (3, [3, 2]), (3, [3])]
    assert clean.loaded(clean.start) == {consumer: phases for consumer in CONSUMERS}
    assert_nothing_from_before(clean, "clean")
    clean.assert_no_value_shown()
    # Cut before the first operation, before each reload and before each step is recorded (a metadata write
    # that does not just clear the reloads done): every other cut takes the same paths as one of these.
    ops = ["", *done.ops]
    cuts = [1] + [
        n
        for n in range(1, len(ops))
        if "systemctl try-" in ops[n] or ("meta.json" in ops[n] and "systemctl try-" not in ops[n - 1])
    ]

    def cut(fault):
        scenario = start(tmp_path, run_module, in_window, fault.replace(":", "-"))
        broken = scenario.run(fault=fault, rotate_all=True)
        assert broken.killed and broken.result is None, broken
        scenario.assert_consistent(f"cut by {fault}")
        again = scenario.run(rotate_all=True)  # the operator runs the incident again
        assert again.rc == 0, again
        scenario.assert_consistent(f"after {fault} and the re-run")
        assert_each_reload_consistent(scenario, fault)
        assert_nothing_from_before(scenario, fault)
        scenario.assert_no_value_shown()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(cut, f"kill:{n}") for n in sorted(set(cuts))]:
            future.result()
