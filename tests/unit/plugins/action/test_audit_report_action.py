"""audit_report writes the fleet's reports on the controller."""

import json

from ansible_collections.bulwark.hardening.plugins.action.audit_report import write_reports
from ansible_collections.bulwark.hardening.plugins.module_utils.audit import checks, report


def test_write_reports(tmp_path):
    good = report.host_report(None, [checks.finding("ssh_password_login", "pass", "e")], "t")
    summary, written = write_reports({"a": good, "down": None}, str(tmp_path), 90)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.json",
        "down.json",
        "fleet.json",
        "index.html",
        "junit.xml",
    ]
    assert sorted(written) == sorted(str(p) for p in tmp_path.iterdir())
    assert json.loads((tmp_path / "a.json").read_text())["score"] == 100
    assert json.loads((tmp_path / "a.json").read_text())["host"] == "a"
    down = json.loads((tmp_path / "down.json").read_text())
    assert down["score"] is None
    assert down["error"] == "not audited (unreachable or failed)"
    # A host that could not be audited is below any minimum: the pipeline must not pass it.
    assert summary["below_min_score"] == ["down"]
    assert json.loads((tmp_path / "fleet.json").read_text())["passed"] is False
