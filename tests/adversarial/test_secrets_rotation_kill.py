"""secret_store's rotation killed, or failed, at every host operation, then run again.

A clean rotation of a password with two consumers (one restarted, one reloaded) is counted operation by
operation; then for each N the same rotation, from the same start, is killed just before operation N (or
has operation N fail) and run again until it is done. At the cut, and at every reload a consumer saw on
the way, every consumer's active value is one that every consumer accepts and that the metadata accepts;
the consumers saw each phase (dual-accept, promote, revoke) in order, none skipped; the end is what the
clean rotation gives; and no value is in any result, stderr or operations log. The same for a rollback,
which from stable goes through dual-accept again before the old version is promoted back.
"""

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import FakeSystemd

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import rotation

CONSUMERS = {"app": ("try-restart", "app.service"), "api": ("try-reload-or-restart", "api.service")}


class Scenario:
    """A store and two consumers under root, with a systemd stand-in whose reloads note what each consumer
    loads (its active value and its accept list) in root/loads."""

    def __init__(self, root, run_module, template=None):
        self.root, self.run_module = root, run_module
        root.mkdir(parents=True, exist_ok=True)
        if template:
            for part in ("store", "app", "api"):
                shutil.copytree(template / part, root / part, symlinks=True)
        self.systemd = FakeSystemd(root / "systemd")
        for name, (verb, unit) in CONSUMERS.items():
            self.systemd.hook("show", unit, "echo loaded")
            folder = root / name
            self.systemd.hook(
                verb,
                unit,
                f'printf "%s %s %s\\n" {name} "$(cat {folder}/db)" "$(tr "\\n" , < {folder}/db.accept)"'
                f" >> {root}/loads",
            )
        self.runs = []
        self.values = set()

    def args(self, **changes):
        return {
            "secrets": [{"name": "db", "type": "password", "overlap": 0, "consumers": ["app", "api"]}],
            "consumers": {
                name: {"directory": str(self.root / name), "service": unit, "action": verb.split("-")[1]}
                for name, (verb, unit) in CONSUMERS.items()
            },
            "directory": str(self.root / "store"),
            **changes,
        }

    def run(self, fault=None, **changes):
        done = self.run_module("secret_store", self.args(**changes), env=self.systemd.env(), fault=fault)
        self.runs.append(done)
        self.note_values()
        return done

    # --- what is on disk -------------------------------------------------------------------------------

    def meta(self):
        return json.loads((self.root / "store/db/meta.json").read_text())

    def versions(self):
        """value -> version number of the values in the store."""
        folder = self.root / "store/db"
        return {
            (folder / leaf).read_text(): int(leaf[1:]) for leaf in os.listdir(folder) if leaf[1:].isdigit()
        }

    def note_values(self):
        self.values.update(self.versions())

    def consumer(self, name):
        """(active value, accepted values) in a consumer's files."""
        folder = self.root / name
        return (folder / "db").read_text().strip(), (folder / "db.accept").read_text().split()

    def loads(self):
        """(consumer, active value, accepted values) at each reload, in order."""
        path = self.root / "loads"
        lines = path.read_text().splitlines() if path.exists() else []
        return [
            (name, active, accept.strip(",").split(",")) for name, active, accept in map(str.split, lines)
        ]

    def tree(self):
        """Every file and directory under the store and the consumers, with its mode (no stray temp file)."""
        return {
            str(path.relative_to(self.root)): oct(path.stat().st_mode)
            for part in ("store", "app", "api")
            for path in sorted((self.root / part).rglob("*"))
        }

    # --- the invariants --------------------------------------------------------------------------------

    def assert_consistent(self, where):
        """Now: each consumer's active value is accepted by every consumer's files and by the metadata."""
        meta = self.meta()
        versions = self.versions()
        accepted = rotation.accepted(meta)
        files = {name: self.consumer(name) for name in CONSUMERS}
        for name, (active, _accept) in files.items():
            assert versions.get(active) in accepted, (
                f"{where}: {name} holds a value the metadata does not accept"
            )
            for other, (_active, accept) in files.items():
                assert active in accept, f"{where}: {name}'s active value is not in {other}'s accept list"

    def loaded(self, start):
        """Each reload in order, as versions, checking that what the consumers run accept one another."""
        running = dict(start)
        versions = self.versions()
        seen = {name: [] for name in CONSUMERS}
        for name, active, accept in self.loads():
            running[name] = (active, accept)
            for other, (other_active, _unused) in running.items():
                for reader, (_unused, reader_accept) in running.items():
                    assert other_active in reader_accept, f"{reader} runs without accepting {other}'s value"
            state = (versions[active], [versions[value] for value in accept])
            if not seen[name] or seen[name][-1] != state:
                seen[name].append(state)
        return seen

    def assert_no_value_shown(self):
        for done in self.runs:
            shown = json.dumps(done.result) + done.stderr + "\n".join(done.ops)
            for value in self.values:
                assert value not in shown and value[:12] not in shown, done
            assert "Traceback" not in done.stderr, done

    def outcome(self):
        """The end state without its random values: metadata by versions, the tree, the consumers' files."""
        meta = self.meta()
        versions = self.versions()
        return {
            "state": (meta["state"], meta["latest"], meta["reload_pending"], meta["rolled_back"]),
            "versions": [
                entry and entry["version"] for entry in (meta["current"], meta["previous"], meta["next"])
            ],
            "tree": self.tree(),
            "consumers": {
                name: (versions[active], [versions[value] for value in accept])
                for name, (active, accept) in ((n, self.consumer(n)) for n in CONSUMERS)
            },
        }


@pytest.fixture
def template(tmp_path, run_module):
    """A store and consumers with version 1 of db, as a first run leaves them."""
    first = Scenario(tmp_path / "template", run_module)
    done = first.run()
    assert done.rc == 0 and done.result["steps"] == ["db: generate version 1"], done
    (first.root / "loads").unlink()
    return first.root


def resume(scenario, request):
    """Run again until the request is done, as an operator would: a plain run continues a rotation in
    progress; the request itself again only if the cut came before it was recorded."""
    done = scenario.run()
    assert done.rc == 0, done
    if not request(scenario.meta()):
        done = scenario.run(**REQUESTS[scenario.kind][0])
        assert done.rc == 0, done
    scenario.assert_consistent("after the re-run")


REQUESTS = {
    # what is asked; whether the metadata shows it was taken (a rotation staged, a rollback recorded)
    "rotation": ({"rotate": ["db"]}, lambda meta: meta["latest"] == 2),
    "rollback": ({"rollback": ["db"]}, lambda meta: meta["rolled_back"]),
}
PHASES = {
    # what every consumer loads, in order: dual-accept, promote, revoke
    "rotation": [(1, [2, 1]), (2, [2, 1]), (2, [2])],
    "rollback": [(2, [1, 2]), (1, [1, 2]), (1, [1])],
}


def start(kind, tmp_path, run_module, template, name):
    root = template
    if kind == "rollback":  # from a finished rotation: version 2 active, version 1 kept
        root = tmp_path / "rotated"
        if not root.exists():
            rotated = Scenario(root, run_module, template)
            assert rotated.run(rotate=["db"]).rc == 0
    scenario = Scenario(tmp_path / name, run_module, root)
    scenario.kind = kind
    scenario.start = {consumer: scenario.consumer(consumer) for consumer in CONSUMERS}
    return scenario


@pytest.mark.parametrize(
    ("kind", "cuts"),
    [
        ("rotation", ("kill", "fail")),
        # the rollback's own states (dual with the previous version as next) killed; its failures take the
        # same paths as the rotation's
        ("rollback", ("kill",)),
    ],
)
def test_killed_or_failed_at_every_operation_the_rotation_resumes_consistent(
    kind, cuts, tmp_path, run_module, template
):
    ask, taken = REQUESTS[kind]
    clean = start(kind, tmp_path, run_module, template, "clean")
    done = clean.run(**ask)
    assert done.rc == 0 and done.ops, done
    assert clean.loaded(clean.start) == dict.fromkeys(CONSUMERS, PHASES[kind])
    expected = clean.outcome()
    again = clean.run()
    assert (again.rc, again.result["changed"], again.result["steps"]) == (0, False, []), again
    clean.assert_no_value_shown()
    total = len(done.ops)

    def cut(fault):
        scenario = start(kind, tmp_path, run_module, template, fault.replace(":", "-"))
        broken = scenario.run(fault=fault, **ask)
        if fault.startswith("kill"):
            assert broken.killed and broken.result is None, broken
        else:
            assert broken.rc == 1 and broken.result["failed"] and broken.result["redacted"], broken
            assert "injected failure" in broken.result["msg"], broken
        scenario.assert_consistent(f"cut by {fault}")
        resume(scenario, taken)
        assert scenario.loaded(scenario.start) == dict.fromkeys(CONSUMERS, PHASES[kind]), fault
        assert scenario.outcome() == expected, fault
        scenario.assert_no_value_shown()

    faults = [f"{how}:{n}" for n in range(1, total + 1) for how in cuts]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(cut, fault) for fault in faults]:
            future.result()
