"""playbooks/audit.yml on hardened hosts, against controls broken by hand, and harden.yml's drift check.

No test here takes testinfra's `host` fixture: the tests are steps of one story on the fleet (audit,
break, audit, restore, audit, drift, repair) that must run in this file's order, which pytest keeps only
for tests it does not parametrize by host. audit-bookworm gets the broken controls, audit-trixie the drifts.
"""

import json
import re
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from pathlib import Path

import pytest
import testinfra
from lab_testing import LAB_PASSWORD, address_of, ansible_env, reach, ssh, wait_for_ssh

PROJECT = Path(__file__).resolve().parents[3]
HOSTS = ("audit-bookworm", "audit-trixie")
BROKEN, DRIFTED = HOSTS
MIN_SCORE = 90  # the bar for a hardened host
BREAK_PORT, DRIFT_PORT = 8081, 8082
USER_KEY = "/home/deploy/.ssh/id_ed25519"
BREAK_DROPIN = "/etc/ssh/sshd_config.d/00-aaa-by-hand.conf"  # sorts before 00-bulwark.conf: sshd takes it
SCREEN = (1024, 1280)

# What audit.yml must never change: files (content, mode, owner), the ruleset, the services and jails.
SNAPSHOT = r"""set -o pipefail
{
  find /etc /home /root /usr/local /var/lib/bulwark -xdev -not -path '*/.ansible*' \
    -printf '%p %M %U %G %s %l\n' 2>/dev/null | sort
  find /etc /home /root /usr/local /var/lib/bulwark -xdev -type f -not -path '*/.ansible*' -print0 \
    | sort -z | xargs -0 sha256sum
  nft -s list ruleset
  systemctl list-units --type=service --all --no-legend --plain | grep -v '^user' | awk '{print $1, $3, $4}'
  fail2ban-client status
}"""


@pytest.fixture(scope="module")
def hosts(request):
    inventory = request.config.option.ansible_inventory
    return {name: testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory) for name in HOSTS}


def root(host, command):
    with host.sudo():
        return host.check_output(command)


def snapshot(hosts):
    return {name: root(host, f"bash -c {_quote(SNAPSHOT)}") for name, host in hosts.items()}


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def playbook(request, name, *args, env=None):
    """ansible-playbook on the scenario's inventory from the controller; returns the CompletedProcess."""
    env = ansible_env(ANSIBLE_NOCOLOR="1", **(env or {}))
    inventory = request.config.option.ansible_inventory
    argv = ["ansible-playbook", "-i", inventory, str(PROJECT / "playbooks" / name), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=900)


class Audit:
    """One run of audit.yml: its process and the reports it wrote."""

    def __init__(self, run, directory):
        self.run, self.dir = run, directory
        self.output = run.stdout + run.stderr
        self.fleet = json.loads((directory / "fleet.json").read_text())
        self.reports = {name: json.loads((directory / f"{name}.json").read_text()) for name in HOSTS}

    def status(self, name):
        return {f["id"]: f for f in self.reports[name]["findings"]}

    def failed(self, name):
        return {fid for fid, f in self.status(name).items() if f["status"] == "fail"}


def audit(request, tmp_path_factory, *args):
    directory = tmp_path_factory.mktemp("audit")
    run = playbook(request, "audit.yml", "-e", f"audit_output_dir={directory}", *args)
    assert (directory / "fleet.json").exists(), run.stdout[-3000:] + run.stderr[-2000:]
    return Audit(run, directory)


@pytest.fixture(scope="module")
def clean(request, tmp_path_factory, hosts):
    """audit.yml on the freshly hardened fleet, with the hosts' state hashed before and after."""
    before = snapshot(hosts)
    result = audit(request, tmp_path_factory, "-e", f"audit_min_score={MIN_SCORE}")
    return result, before, snapshot(hosts)


def test_every_hardened_host_scores_at_least_the_bar_and_the_fleet_summary_says_so(clean):
    result, _before, _after = clean
    assert result.run.returncode == 0, result.output[-4000:]
    for name, report in result.reports.items():
        print(f"{name}: score {report['score']}, failed {report['failed']}")
        assert isinstance(report["score"], int) and MIN_SCORE <= report["score"] <= 100, report["failed"]
        assert set(report["categories"]) == {"authentication", "network", "data protection", "infrastructure"}
        for category, values in report["categories"].items():
            assert isinstance(values["score"], int) and 0 <= values["score"] <= 100, category
            assert values["passed"] + values["failed"] > 0, category
        assert report["host"] == name
        # The controls this scenario breaks below pass on a hardened host.
        assert not {"ssh_password_login", "exposed_services", "fail2ban_sshd", "private_keys",
                    "shadow_files"} & result.failed(name)  # fmt: skip
    assert result.fleet["hosts"] == {name: r["score"] for name, r in result.reports.items()}
    assert result.fleet["min_score"] == MIN_SCORE
    assert result.fleet["below_min_score"] == [] and result.fleet["passed"] is True
    assert result.fleet["lowest"] == min(r["score"] for r in result.reports.values())
    assert f"minimum score {MIN_SCORE}: every host meets it" in result.output
    for name in HOSTS:
        assert f"{name}: " in result.output and "authentication:" in result.output


def junit_cases(result):
    """{host: {test case name: failure element or None}} from the run's junit.xml, which must parse."""
    tree = ET.parse(result.dir / "junit.xml")  # noqa: S314  (written by this run, not untrusted)
    cases = {}
    for suite in tree.getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            mine = cases.setdefault(case.get("classname"), {})
            assert case.get("name") not in mine, f"two test cases named {case.get('name')}"
            mine[case.get("name")] = case.find("failure")
        assert int(suite.get("tests")) == len(list(suite.iter("testcase")))
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))
    return cases


def assert_junit_matches(result):
    cases = junit_cases(result)
    assert set(cases) == set(HOSTS)
    for name in HOSTS:
        findings = result.reports[name]["findings"]
        assert set(cases[name]) == {f"{f['category']}: {f['id']}" for f in findings}
        failing = {case for case, failure in cases[name].items() if failure is not None}
        assert failing == {f"{f['category']}: {f['id']}" for f in findings if f["status"] == "fail"}


def test_junit_has_one_test_case_per_finding(clean):
    assert_junit_matches(clean[0])


def png_pixels(data):
    """(width, height, [row bytes]) of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, chunks, header = 8, [], None
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour, _c, _f, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw, stride, rows = zlib.decompress(b"".join(chunks)), width * channels, []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up, corner = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, [[row[i : i + 3] for i in range(0, stride, channels)] for row in rows]


def test_the_html_page_renders_in_headless_chromium(clean, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed on this machine (CI installs the Debian package: .ci/run)")
    page = clean[0].dir / "index.html"
    shot = tmp_path / "audit.png"
    # --no-sandbox: Chromium's sandbox refuses to run as root, which CI is.
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={SCREEN[0]},{SCREEN[1]}",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == SCREEN
    colours = Counter(bytes(pixel) for row in rows for pixel in row)
    commonest, most = colours.most_common(1)[0]
    print(f"{len(colours)} colours, {commonest.hex()} the commonest on {100 * most // (width * height)} %")
    assert len(colours) > 50, "a blank or nearly blank page"
    assert most < 0.97 * width * height
    # The page's own style, so the page itself rendered, not an error page: its background around the
    # tables, and the colour of the scores that reach 90 (every host's here).
    assert colours[bytes((0xF7, 0xF7, 0xF5))] > 0.05 * width * height
    assert colours[bytes((0xC8, 0xEC, 0xC8))] > 500


def test_the_audit_changes_nothing_on_the_hosts(clean):
    _result, before, after = clean
    for name in HOSTS:
        assert after[name] == before[name], f"audit.yml changed {name}"


# --- controls broken by hand on audit-bookworm --------------------------------------------------------


def eventually(check, timeout=10):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def listen(host, port):
    root(host, f"systemd-run --unit=audit-test-{port} python3 -m http.server {port}")
    assert eventually(lambda: reach(host, "127.0.0.1", port)), f"no listener on {port}"


def jails(host):
    return root(host, "fail2ban-client status").split("Jail list:", 1)[1].replace(",", " ").split()


def ruleset_handle(host, port):
    """The handle of the rule opening port in the collection's input chain (nft -a), or None."""
    for line in root(host, "nft -a list chain inet bulwark input").splitlines():
        if f"tcp dport {port} accept" in line and "# handle" in line:
            return line.rsplit("# handle", 1)[1].strip()
    return None


@pytest.fixture(scope="module")
def broken(request, tmp_path_factory, hosts, clean):
    """Each control broken on audit-bookworm at once (they do not interfere), proven broken, then audited."""
    host, peer = hosts[BROKEN], hosts[DRIFTED]
    address = address_of(host)
    # Password login re-enabled, as an operator would by hand, and sshd reloaded.
    root(host, f"sh -c 'printf \"PasswordAuthentication yes\\n\" > {BREAK_DROPIN}' && systemctl reload ssh")
    wait_for_ssh(address)
    # A port opened by hand in the collection's chain, and a service listening on it.
    listen(host, BREAK_PORT)
    root(host, f"nft insert rule inet bulwark input tcp dport {BREAK_PORT} accept")
    # The SSH jail stopped; fail2ban itself keeps running.
    root(host, "fail2ban-client stop sshd")
    # A private key and the password hashes readable by everyone.
    root(host, f"sudo -u deploy ssh-keygen -q -t ed25519 -N '' -f {USER_KEY} && chmod 0644 {USER_KEY}")
    root(host, "chmod o+r /etc/shadow")

    # Each break is real before the audit judges it.
    assert ssh(address, password=LAB_PASSWORD).returncode == 0, "password login still refused"
    assert reach(peer, address, BREAK_PORT), "the opened port is not reachable from another host"
    assert "sshd" not in jails(host)
    assert root(host, "sudo -u nobody head -c 5 /etc/shadow") == "root:"
    return audit(request, tmp_path_factory, "-e", f"audit_min_score={MIN_SCORE}")


BREAKS = {
    "ssh_password_login": "passwordauthentication yes",
    "exposed_services": f":{BREAK_PORT} (python3",
    "fail2ban_sshd": "running jails: recidive",
    "private_keys": f"{USER_KEY} mode 0644",
    "shadow_files": "/etc/shadow mode 0644",
}


def test_each_broken_control_fails_and_nothing_else_does(broken, clean):
    result = broken
    mine = result.status(BROKEN)
    for fid, evidence in BREAKS.items():
        assert mine[fid]["status"] == "fail", mine[fid]
        assert evidence in mine[fid]["evidence"], mine[fid]
        assert mine[fid]["remediation"], mine[fid]
    assert result.failed(BROKEN) - clean[0].failed(BROKEN) == set(BREAKS)
    assert result.failed(DRIFTED) == clean[0].failed(DRIFTED)


def test_the_play_fails_below_audit_min_score_naming_the_host(broken):
    result = broken
    score = result.reports[BROKEN]["score"]
    assert score < MIN_SCORE <= result.reports[DRIFTED]["score"]
    assert result.run.returncode != 0
    assert f"below audit_min_score {MIN_SCORE}: {BROKEN} ({score})" in result.output
    assert result.fleet["below_min_score"] == [BROKEN] and result.fleet["passed"] is False
    # The reports are written all the same, for the pipeline to publish: failures as failed test cases.
    assert_junit_matches(result)


@pytest.fixture(scope="module")
def restored(request, tmp_path_factory, hosts, broken):
    """The breaks undone by hand, proven undone; then audit.yml in check mode, hashed before and after."""
    host, peer = hosts[BROKEN], hosts[DRIFTED]
    address = address_of(host)
    root(host, f"rm {BREAK_DROPIN} && systemctl reload ssh")
    wait_for_ssh(address)
    root(host, f"nft delete rule inet bulwark input handle {ruleset_handle(host, BREAK_PORT)}")
    root(host, "fail2ban-client reload")  # a full reload starts the jails the configuration enables
    root(host, f"chmod 0600 {USER_KEY} && chmod o-r /etc/shadow")

    assert ssh(address).returncode == 0 and ssh(address, password=LAB_PASSWORD).returncode != 0
    assert reach(host, "127.0.0.1", BREAK_PORT) and not reach(peer, address, BREAK_PORT)
    assert eventually(lambda: "sshd" in jails(host))
    with host.sudo():
        assert host.run("sudo -u nobody head -c 5 /etc/shadow").rc != 0
    root(host, f"systemctl stop audit-test-{BREAK_PORT}")
    before = snapshot(hosts)
    result = audit(request, tmp_path_factory, "--check", "-e", f"audit_min_score={MIN_SCORE}")
    return result, before, snapshot(hosts)


def test_each_restored_control_passes_again(restored):
    result, _before, _after = restored
    assert result.run.returncode == 0, result.output[-4000:]
    for fid in BREAKS:
        assert result.status(BROKEN)[fid]["status"] == "pass", result.status(BROKEN)[fid]
    assert result.fleet["passed"] is True


def test_the_audit_in_check_mode_changes_nothing_either(restored):
    _result, before, after = restored
    for name in HOSTS:
        assert after[name] == before[name], f"audit.yml --check changed {name}"


# --- drift: harden.yml --check --diff on audit-trixie, changed by hand ------------------------------

DRIFTS = {
    "firewall": "Apply the firewall policy",
    "sshd": "/etc/ssh/sshd_config.d/00-bulwark.conf",
    "fail2ban": "fail2ban-client reload",
    "bootstrap": "deploy: authorized_keys",
}


def harden(request, tmp_path_factory, *args):
    """harden.yml with the drift callback; (the process, its drift report)."""
    report = tmp_path_factory.mktemp("drift") / "drift.json"
    env = {"ANSIBLE_CALLBACKS_ENABLED": "bulwark.hardening.drift", "BULWARK_DRIFT_REPORT": str(report)}
    run = playbook(request, "harden.yml", *args, env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run, report


def gate(report):
    """The README's pipeline gate on the drift report: exit 0 when nothing drifted."""
    return subprocess.run(["jq", "-e", ".drifted | not", str(report)], capture_output=True, check=False)


@pytest.fixture(scope="module")
def intruder_key(tmp_path_factory):
    key = tmp_path_factory.mktemp("intruder") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "added-by-hand", "-f", str(key)],
                   check=True)  # fmt: skip
    return key


@pytest.fixture(scope="module")
def drifted(request, tmp_path_factory, hosts, intruder_key, restored):
    """The four drifts on audit-trixie at once, proven real, then one check run, hashed before and after."""
    host, peer = hosts[DRIFTED], hosts[BROKEN]
    address = address_of(host)
    listen(host, DRIFT_PORT)
    root(host, f"nft insert rule inet bulwark input tcp dport {DRIFT_PORT} accept")
    dropin = "/etc/ssh/sshd_config.d/00-bulwark.conf"
    root(host, f"sed -i 's/^MaxAuthTries .*/MaxAuthTries 6/' {dropin} && systemctl reload ssh")
    wait_for_ssh(address)
    root(host, "fail2ban-client stop sshd")
    public = intruder_key.with_suffix(".pub").read_text().strip()
    root(host, f"sh -c 'echo \"{public}\" >> /home/deploy/.ssh/authorized_keys'")

    assert reach(peer, address, DRIFT_PORT)
    assert "maxauthtries 6" in root(host, "sshd -T").splitlines()
    assert "sshd" not in jails(host)
    assert ssh(address, key=intruder_key).returncode == 0, "the key added by hand does not log in"
    before = snapshot(hosts)
    run, report = harden(request, tmp_path_factory, "--check", "--diff")
    return run, report, before, snapshot(hosts)


def test_check_mode_reports_exactly_the_drifts_by_host_and_concern(drifted):
    run, report, _before, _after = drifted
    found = json.loads(report.read_text())
    assert found["drifted"] is True and found["check_mode"] is True
    assert set(found["hosts"]) == {DRIFTED}, found
    assert set(found["hosts"][DRIFTED]) == set(DRIFTS), found
    for concern, named in DRIFTS.items():
        (entry,) = found["hosts"][DRIFTED][concern]
        assert named in entry, entry
        assert f"DRIFT: {DRIFTED} {concern} would change (drift): {entry}" in run.stdout
    # The recap agrees: the four changes on the drifted host, none on the other.
    assert re.search(rf"^{DRIFTED}\s*: ok=\d+\s+changed=4\s", run.stdout, re.M), run.stdout[-2000:]
    assert re.search(rf"^{BROKEN}\s*: ok=\d+\s+changed=0\s", run.stdout, re.M), run.stdout[-2000:]
    # The diff shows the rule that nothing declared.
    assert "-input: <rule handle" in run.stdout
    # A pipeline gates on the report: the README's gate fails the job.
    assert gate(report).returncode == 1


def test_check_mode_changes_nothing_on_the_drifted_host(drifted, hosts):
    _run, _report, before, after = drifted
    for name in HOSTS:
        assert after[name] == before[name], f"harden.yml --check changed {name}"
    # Still drifted, in behaviour: the port answers from another host.
    assert reach(hosts[BROKEN], address_of(hosts[DRIFTED]), DRIFT_PORT)


@pytest.fixture(scope="module")
def repaired(request, tmp_path_factory, drifted):
    """A normal run, then a check run."""
    return harden(request, tmp_path_factory), harden(request, tmp_path_factory, "--check", "--diff")


def test_a_normal_run_repairs_the_drifts_and_the_next_check_is_clean(repaired, hosts, intruder_key):
    (_run, report), (check, check_report) = repaired
    changed = json.loads(report.read_text())
    assert changed["check_mode"] is False and set(changed["hosts"]) == {DRIFTED}
    assert set(changed["hosts"][DRIFTED]) == set(DRIFTS), changed
    clean_check = json.loads(check_report.read_text())
    assert clean_check == {"check_mode": True, "drifted": False, "hosts": {}}
    assert "DRIFT: nothing would change" in check.stdout
    assert gate(check_report).returncode == 0

    host, peer = hosts[DRIFTED], hosts[BROKEN]
    address = address_of(host)
    assert reach(host, "127.0.0.1", DRIFT_PORT) and not reach(peer, address, DRIFT_PORT)
    assert "maxauthtries 3" in root(host, "sshd -T").splitlines()
    assert "sshd" in jails(host)
    assert ssh(address).returncode == 0 and ssh(address, key=intruder_key).returncode != 0
    root(host, f"systemctl stop audit-test-{DRIFT_PORT}")
