"""baseline_files runs its changes as one host plan: check mode touches nothing, and a change that fails
half-way puts back what was applied before it (content, mode and owner), saying so."""

import os
import stat


def _state(directory):
    found = {}
    for name in sorted(os.listdir(directory)):
        info = os.lstat(os.path.join(directory, name))
        content = open(os.path.join(directory, name)).read() if stat.S_ISREG(info.st_mode) else None
        found[name] = (stat.S_IMODE(info.st_mode), info.st_uid, content)
    return found


def _entries(root):
    return [
        {"path": f"{root}/motd", "state": "file", "content": "new motd\n", "mode": "0644"},
        {"path": f"{root}/issue", "state": "attributes", "mode": "0600"},
        {"path": f"{root}/gone", "state": "absent"},
        # Last: its validation refuses, after the three above were applied.
        {
            "path": f"{root}/refused",
            "state": "file",
            "content": "x\n",
            "mode": "0644",
            "validate": ["false", "%s"],
        },
    ]


def _seed(root):
    for name, text, mode in (
        ("motd", "old motd\n", 0o640),
        ("issue", "issue\n", 0o644),
        ("gone", "bye\n", 0o600),
    ):
        with open(os.path.join(root, name), "w") as handle:
            handle.write(text)
        os.chmod(os.path.join(root, name), mode)


def test_check_mode_reports_and_touches_nothing(state_root, run_module):
    root = state_root  # an empty directory private to the test
    _seed(root)
    before = _state(root)
    done = run_module("baseline_files", {"files": _entries(root)[:3]}, check_mode=True)
    assert done.rc == 0, done
    assert done.result["changed"] is True
    assert done.result["changed_paths"] == [f"{root}/motd", f"{root}/issue", f"{root}/gone"]
    assert _state(root) == before
    assert not done.ops, done.ops


def test_a_failure_half_way_puts_back_what_was_applied_and_says_so(state_root, run_module):
    root = state_root  # an empty directory private to the test
    _seed(root)
    before = _state(root)
    done = run_module("baseline_files", {"files": _entries(root)})
    assert done.rc != 0, done
    msg = done.result["msg"]
    assert msg.startswith(f"files[3] ({root}/refused): write failed: false on the new file failed"), msg
    assert (
        f"Put back: put back {root}/gone; put back the mode and owner of {root}/issue; put back {root}/motd"
        in msg
    )
    assert done.result["changed"] is True
    assert _state(root) == before


def test_a_clean_run_applies_every_change(state_root, run_module):
    root = state_root  # an empty directory private to the test
    _seed(root)
    done = run_module("baseline_files", {"files": _entries(root)[:3]})
    assert done.rc == 0, done
    assert _state(root) == {"issue": (0o600, 0, "issue\n"), "motd": (0o644, 0, "new motd\n")}
    again = run_module("baseline_files", {"files": _entries(root)[:3]})
    assert (again.rc, again.result["changed"]) == (0, False), again
