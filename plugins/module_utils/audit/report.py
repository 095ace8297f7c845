"""Scores and reports of the audit (pure): per host, for the fleet, as text, JSON, JUnit XML and HTML.

A score is the share of the applicable findings' weight that passes, 0-100: a critical finding weighs
as much as ten low ones. Skipped findings (the control does not apply) weigh nothing; a category with
no applicable finding has no score (None) and does not count.
"""

import html
import json
from xml.sax.saxutils import quoteattr

from ansible_collections.bulwark.hardening.plugins.module_utils.audit.checks import (
    CATEGORIES,
    FAIL,
    PASS,
    SEVERITIES,
)

WEIGHTS = {"critical": 10, "high": 6, "medium": 3, "low": 1}


def score(findings):
    applicable = [f for f in findings if f["status"] in (PASS, FAIL)]
    total = sum(WEIGHTS[f["severity"]] for f in applicable)
    if not total:
        return None
    passed = sum(WEIGHTS[f["severity"]] for f in applicable if f["status"] == PASS)
    return round(100 * passed / total)


def host_report(host, findings, audited_at):
    """The per-host JSON report: its overall score at the top level, each category's own."""
    categories = {}
    for category in CATEGORIES:
        mine = [f for f in findings if f["category"] == category]
        if mine:
            categories[category] = {
                "score": score(mine),
                "passed": sum(f["status"] == PASS for f in mine),
                "failed": sum(f["status"] == FAIL for f in mine),
            }
    return {
        "host": host,
        "score": score(findings),
        "audited_at": audited_at,
        "categories": categories,
        "failed": [f["id"] for f in findings if f["status"] == FAIL],
        "findings": findings,
    }


def fleet_summary(reports, min_score=None):
    """The fleet: each host's score, each category's mean over its hosts, the hosts below min_score."""
    hosts = {r["host"]: r["score"] for r in reports}
    scored = [s for s in hosts.values() if s is not None]
    categories = {}
    for category in CATEGORIES:
        values = [r["categories"][category]["score"] for r in reports
                  if r["categories"].get(category, {}).get("score") is not None]  # fmt: skip
        if values:
            categories[category] = round(sum(values) / len(values))
    below = sorted(h for h, s in hosts.items() if min_score is not None and (s is None or s < min_score))
    return {
        "hosts": hosts,
        "score": round(sum(scored) / len(scored)) if scored else None,
        "lowest": min(scored) if scored else None,
        "categories": categories,
        "min_score": min_score,
        "below_min_score": below,
        "passed": min_score is None or not below,
    }


def text(report):
    """A production check's printout: score per category, what failed and what to do, what passed."""
    name = f"{report['host']}: " if report.get("host") else ""
    lines = [f"{name}score {report['score']}/100"]
    for category, values in report["categories"].items():
        shown = "n/a" if values["score"] is None else values["score"]
        lines.append(f"  {category}: {shown} ({values['passed']} passed, {values['failed']} failed)")
        for f in report["findings"]:
            if f["category"] != category or f["status"] == "skip":
                continue
            mark = "PASS" if f["status"] == PASS else "FAIL"
            lines.append(f"    [{mark}] {f['severity']:<8} {f['id']}: {f['evidence']}")
            if f["status"] == FAIL:
                lines.append(f"           fix: {f['remediation']}")
    return lines


def fleet_text(summary):
    lines = [f"fleet: score {summary['score']}/100 (lowest {summary['lowest']})"]
    lines += [f"  {category}: {value}" for category, value in summary["categories"].items()]
    lines += [f"  {host}: {value}" for host, value in sorted(summary["hosts"].items())]
    if summary["min_score"] is not None:
        verdict = (
            "every host meets it" if summary["passed"] else "below: " + ", ".join(summary["below_min_score"])
        )
        lines.append(f"  minimum score {summary['min_score']}: {verdict}")
    return lines


def junit(reports):
    """JUnit XML: one test suite per host, one test case per finding; a failing finding is a failure."""
    suites = []
    for r in reports:
        cases = []
        for f in r["findings"]:
            name = quoteattr(f"{f['category']}: {f['id']}")
            body = ""
            if f["status"] == FAIL:
                message = quoteattr(f"{f['severity']}: {f['title']}")
                detail = html.escape(f"{f['evidence']}\nfix: {f['remediation']}", quote=False)
                body = f"<failure message={message} type={quoteattr(f['severity'])}>{detail}</failure>"
            elif f["status"] != PASS:
                body = f"<skipped message={quoteattr(f['evidence'])}/>"
            cases.append(f"    <testcase classname={quoteattr(r['host'])} name={name}>{body}</testcase>")
        failures = sum(f["status"] == FAIL for f in r["findings"])
        skipped = sum(f["status"] not in (PASS, FAIL) for f in r["findings"])
        suites.append(
            f'  <testsuite name={quoteattr("security audit " + r["host"])} tests="{len(r["findings"])}" '
            f'failures="{failures}" errors="0" skipped="{skipped}">\n' + "\n".join(cases) + "\n  </testsuite>"
        )
    return '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n' + "\n".join(suites) + "\n</testsuites>\n"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;background:#f7f7f5;color:#222}
h1{font-size:1.6em} table{border-collapse:collapse;margin:1em 0;background:#fff;max-width:100%}
td,th{border:1px solid #ccc;padding:.35em .7em;text-align:left;vertical-align:top}
.score{font-size:2.4em;font-weight:bold} .good{background:#c8ecc8} .fair{background:#f6e3a8}
.poor{background:#f4b8b0} .pass{color:#17692a} .fail{color:#a31515;font-weight:bold}
.text{overflow-wrap:anywhere}
"""


def _band(value):
    if value is None:
        return ""
    return "good" if value >= 90 else "fair" if value >= 70 else "poor"


def _cell(value):
    return f'<td class="{_band(value)}">{"n/a" if value is None else value}</td>'


def html_page(summary, reports):
    """One self-contained page (no script, no external resource): the fleet's scores, each host's findings."""
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in CATEGORIES)
    rows = []
    for r in sorted(reports, key=lambda r: r["host"]):
        cells = "".join(_cell(r["categories"].get(c, {}).get("score")) for c in CATEGORIES)
        rows.append(
            f'<tr><th><a href="#{esc(r["host"])}">{esc(r["host"])}</a></th>{_cell(r["score"])}{cells}</tr>'
        )
    fleet_cells = "".join(_cell(summary["categories"].get(c)) for c in CATEGORIES)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Security audit</title>',
        f"<style>{_STYLE}</style></head><body><h1>Security audit of {len(reports)} host(s)</h1>",
        f'<p>Fleet score <span class="score {_band(summary["score"])}">{summary["score"]}</span> / 100',
        f" (lowest host: {summary['lowest']})</p>",
    ]
    if summary["min_score"] is not None:
        verdict = (
            "every host meets it"
            if summary["passed"]
            else "below it: " + ", ".join(summary["below_min_score"])
        )
        parts.append(f"<p>Minimum score {summary['min_score']}: {esc(verdict)}</p>")
    parts.append(f"<table><tr><th>host</th><th>score</th>{head}</tr>{''.join(rows)}")
    parts.append(f"<tr><th>fleet</th>{_cell(summary['score'])}{fleet_cells}</tr></table>")
    for r in sorted(reports, key=lambda r: r["host"]):
        parts.append(f'<h2 id="{esc(r["host"])}">{esc(r["host"])}: {r["score"]}</h2><table>')
        parts.append(
            "<tr><th>result</th><th>severity</th><th>category</th><th>finding</th><th>evidence</th><th>fix</th></tr>"
        )
        for f in sorted(
            r["findings"], key=lambda f: (f["status"] != FAIL, SEVERITIES.index(f["severity"]), f["id"])
        ):
            parts.append(
                f'<tr><td class="{esc(f["status"])}">{esc(f["status"])}</td><td>{esc(f["severity"])}</td>'
                f'<td>{esc(f["category"])}</td><td class="text">{esc(f["id"])}: {esc(f["title"])}</td>'
                f'<td class="text">{esc(f["evidence"])}</td>'
                f'<td class="text">{esc(f["remediation"])}</td></tr>'
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def dumps(value):
    return json.dumps(value, indent=2, sort_keys=True) + "\n"
