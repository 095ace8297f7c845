"""Scores, the fleet summary, the JUnit XML and the HTML page."""

import xml.etree.ElementTree as ET

from ansible_collections.bulwark.hardening.plugins.module_utils.audit import checks, report


def f(fid, status):
    return checks.finding(fid, status, f"evidence of {fid}")


FINDINGS = [
    f("ssh_password_login", "pass"),  # authentication critical 10
    f("ssh_max_auth_tries", "fail"),  # authentication low 1
    f("firewall_default_deny", "pass"),  # network critical 10
    f("exposed_services", "fail"),  # network high 6
    f("docker_published", "skip"),  # network medium: does not count
    f("auditd", "pass"),  # infrastructure medium 3
]


def test_score_weights_by_severity_and_ignores_skipped():
    assert report.score(FINDINGS) == round(100 * (10 + 10 + 3) / (10 + 1 + 10 + 6 + 3))  # 77
    assert report.score([f("docker_published", "skip")]) is None
    assert report.score([f("ssh_max_auth_tries", "fail")]) == 0


def test_host_report_has_the_score_at_the_top_and_per_category():
    r = report.host_report("web1", FINDINGS, "2026-12-02T01:00:00Z")
    assert r["score"] == 77
    assert r["categories"] == {
        "authentication": {"score": 91, "passed": 1, "failed": 1},
        "network": {"score": 62, "passed": 1, "failed": 1},
        "infrastructure": {"score": 100, "passed": 1, "failed": 0},
    }
    assert r["failed"] == ["ssh_max_auth_tries", "exposed_services"]


def test_fleet_summary_and_min_score():
    good = report.host_report("a", [f("ssh_password_login", "pass")], "t")
    bad = report.host_report("b", FINDINGS, "t")
    summary = report.fleet_summary([good, bad], min_score=90)
    assert summary["hosts"] == {"a": 100, "b": 77}
    assert summary["score"] == 88  # 88.5 rounds to even
    assert summary["lowest"] == 77
    assert summary["categories"] == {"authentication": 96, "network": 62, "infrastructure": 100}
    assert summary["below_min_score"] == ["b"]
    assert summary["passed"] is False
    assert report.fleet_summary([good], min_score=90)["passed"] is True


def test_junit_has_one_failed_case_per_failing_finding():
    xml = report.junit([report.host_report("web1", FINDINGS, "t")])
    root = ET.fromstring(xml)  # noqa: S314  (our own output)
    suite = root.find("testsuite")
    assert suite.get("tests") == "6"
    assert suite.get("failures") == "2"
    assert suite.get("skipped") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["authentication: ssh_max_auth_tries", "network: exposed_services"]
    failure = suite.find("testcase[@name='network: exposed_services']/failure")
    assert failure.get("message") == "high: no service but SSH is reachable from outside"
    assert failure.text.startswith("evidence of exposed_services\nfix: stop the service")


def test_html_is_self_contained_and_escaped():
    hostile = report.host_report("<script>x</script>", [f("auditd", "fail")], "t")
    page = report.html_page(report.fleet_summary([hostile], 90), [hostile])
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "http://" not in page
    assert "https://" not in page
    assert "src=" not in page


def test_html_lets_long_evidence_wrap_inside_the_page():
    # Seen in headless Chromium: an evidence of long unbroken words (sysctl keys) pushed the fix column
    # off the page.
    one = report.host_report("h", [f("auditd", "fail")], "t")
    page = report.html_page(report.fleet_summary([one], 90), [one])
    assert ".text{overflow-wrap:anywhere}" in page
    assert page.count('<td class="text">') == 3
    assert "max-width:100%" in page
