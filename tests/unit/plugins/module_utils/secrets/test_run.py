"""A run of the secret store on an in-memory host: the order of its effects (the new version stored, the
step recorded, the consumers' files written, then their reload), and check mode, decided in one place,
which reports the same steps and touches nothing."""

import ast
import inspect

from fakes import FakeFiles, host

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import policy, redact
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import run as run_module
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.backends.files import FilesBackend
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.run import Run

NOW = 1_800_000_000
STORE = "/store"
SECRETS = [{"name": "db", "type": "password", "overlap": 0, "consumers": ["app"]}]
CONSUMERS = {"app": {"directory": "/app", "service": "app.service"}}


def request(**changes):
    result = {"rotate": set(), "rollback": set(), "keep_overlap": set(), "all": False, "due": False}
    result.update(changes, compromised_since=None)
    return result


def run(fs, check_mode=False, **changes):
    specs, consumers = policy.normalise(SECRETS, CONSUMERS)
    params = {"wait_for_revoke": 0}
    done = Run(
        host(fs, check_mode),
        params,
        specs,
        consumers,
        store=FilesBackend(STORE, fs),
        redactor=redact.Redactor(),
    )
    done.check_host()
    metas = {name: done.meta(name) for name in specs}
    done.do(done.store.prepare)
    return done, done.run(metas, request(**changes), NOW)


def test_a_first_run_stores_records_then_delivers_and_reloads():
    fs = FakeFiles()
    done, metas = run(fs)
    assert done.steps == ["db: generate version 1"] and metas["db"]["state"] == "stable"
    assert fs.log == [
        ("private_dir", STORE),
        ("write", "/store/db/v1"),  # the value first,
        ("write", "/store/db/meta.json"),  # then the step that names it, before any effect
        ("directory", "/app"),
        ("write", "/app/db"),
        ("write", "/app/db.accept"),
        ("run", "systemctl try-restart app.service"),
        ("write", "/store/db/meta.json"),  # the reload is no longer pending
    ]
    value = fs.files["/store/db/v1"][0]
    assert fs.files["/app/db"][0] == value + "\n" and value not in fs.files["/store/db/meta.json"][0]


def test_a_rotation_reloads_between_its_phases_in_order():
    fs = FakeFiles()
    run(fs)
    del fs.log[:]
    done, metas = run(fs, rotate={"db"})
    assert done.steps == [
        "db: stage version 2 (requested)",
        "db: accept versions [2, 1]",
        "db: promote version 2",
        "db: revoke version 1",
    ]
    effects = [entry for entry in fs.log if entry[1] != "/store/db/meta.json"]
    assert effects == [
        ("private_dir", STORE),
        ("write", "/store/db/v2"),
        ("write", "/app/db.accept"),  # dual-accept: both accepted, the old one still active
        ("run", "systemctl try-restart app.service"),
        ("write", "/app/db"),  # promote: the new one active
        ("run", "systemctl try-restart app.service"),
        ("write", "/app/db.accept"),  # revoke: the old one no longer accepted
        ("run", "systemctl try-restart app.service"),
    ]  # version 1 stays in the store (never distributed) for a rollback
    assert metas["db"]["state"] == "stable" and done.reloaded == ["app.service"] * 3


def test_check_mode_reports_the_same_steps_and_touches_nothing():
    fs = FakeFiles()
    predicted, _metas = run(fs, check_mode=True)
    assert fs.log == [] and fs.files == {}
    assert predicted.steps == ["db: generate version 1"] and predicted.changed
    run(fs)
    before = {path: list(entry) for path, entry in fs.files.items()}
    del fs.log[:]
    predicted, _metas = run(fs, check_mode=True, rotate={"db"})
    assert predicted.steps == [
        "db: stage version 2 (requested)",
        "db: accept versions [2, 1]",
        "db: promote version 2",
        "db: revoke version 1",
    ]
    assert fs.log == [] and fs.files == before  # nothing generated, stored, written or reloaded


def test_a_rerun_changes_nothing():
    fs = FakeFiles()
    run(fs)
    del fs.log[:]
    again, _metas = run(fs)
    assert (again.changed, again.steps, fs.log) == (False, [], [("private_dir", STORE)])  # made sure of


def test_check_mode_is_decided_in_one_place():
    """Run.do is the only reader of check mode: no step has a branch of its own."""
    source = inspect.getsource(run_module)
    readers = [
        function.name
        for function in ast.walk(ast.parse(source))
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Load)
        and ast.unparse(node) == "self.check"
    ]
    assert readers == ["do"]
