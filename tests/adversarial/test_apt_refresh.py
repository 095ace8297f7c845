"""baseline_packages refreshes the package lists only when a refresh is due, at most once per run, and a call
whose packages are all installed runs no apt command at all (issue 26).

apt keeps a list's modification time when a refresh finds nothing new (and sets it to the mirror's when it
does), so lists refreshed a minute ago can look a day old: freshness read from them made every run refresh,
once per package call. The host here is the one of test_apt_lock.py (private copies of dpkg's database and
apt's state, an installed package `bulwark-fake` that owns no file), with one source: a local file
repository (offline, real `apt-get update`) holding a newer `bulwark-fake` (held back: a pending update no
upgrade applies) and a package that can be installed, `bulwark-fake-extra`.
"""

import glob
import hashlib
import os
import time

import pytest
from conftest import sh

# apt_host: the fixture this file's tests take by name.
from test_apt_lock import FAKE, apt_host  # noqa: F401  # pylint: disable=unused-import

EXTRA = "bulwark-fake-extra"
LISTS = "/var/lib/apt/lists"
HOUR, DAY = 3600, 86400


def build(repo, name, version):
    """A .deb owning no file, and its stanza for the repository's Packages index."""
    root = repo / f"{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    control = (
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: bulwark tests <tests@example.invalid>\n"
        "Description: owns no file, for the refresh tests\n"
    )
    (root / "DEBIAN" / "control").write_text(control)
    deb = repo / f"{name}_{version}_all.deb"
    sh(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)])
    data = deb.read_bytes()
    return (
        f"{control}Filename: ./{deb.name}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n\n"
    )


def age_lists(seconds):
    """What apt does to lists that did not change on the mirror: they keep (or get) an old time."""
    when = time.time() - seconds
    for path in [LISTS, *glob.glob(f"{LISTS}/*")]:
        os.utime(path, (when, when))


@pytest.fixture
def repo_host(apt_host, tmp_path):  # noqa: F811
    repo = tmp_path / "repo"
    repo.mkdir()
    stanzas = build(repo, FAKE, "2.0") + build(repo, EXTRA, "1.0")
    # Uncompressed: apt links it into its lists (baseline_packages must see lists in links too).
    (repo / "Packages").write_text(stanzas)
    for source in glob.glob("/etc/apt/sources.list") + glob.glob("/etc/apt/sources.list.d/*"):
        os.remove(source)
    with open("/etc/apt/sources.list.d/bulwark-test.list", "w", encoding="utf-8") as out:
        out.write(f"deb [trusted=yes] file:{repo} ./\n")
    sh(["apt-mark", "hold", FAKE])
    os.remove(glob.glob(f"{LISTS}/example.invalid_*")[0])
    sh(["apt-get", "update", "--quiet"])
    assert glob.glob(f"{LISTS}/*_Packages"), os.listdir(LISTS)
    age_lists(2 * DAY)
    return {**apt_host, "absent": [], "cache_valid_time": HOUR, "lock_timeout": 10}


def ran(done):
    """The apt commands the module ran, as the host layer saw them; the module's own account (apt_runs) must
    say the same."""
    commands = []
    for op in done.ops:
        argv = op.split("\trun ", 1)[-1].split()
        if argv[:1] == ["apt-get"]:
            commands.append(" ".join(argv[:2]) + (" --simulate" if "--simulate" in argv else ""))
    assert done.result.get("apt_runs", commands) == commands, done.result
    return commands


def ok(done):
    assert done.rc == 0 and not done.result.get("failed"), done
    return done


def stamp(args):
    return os.path.join(args["state_dir"], "apt-refresh.stamp")


def test_lists_apt_left_old_are_refreshed_once_then_not_again_in_the_run_nor_the_next(repo_host, run_module):
    bootstrap = {**repo_host, "upgrade": "safe"}
    fail2ban = {**repo_host, "present": [FAKE]}
    # The first call of the run: the lists look two days old and nothing says otherwise: one refresh.
    first = run_module("baseline_packages", bootstrap)
    assert ran(ok(first)) == ["apt-get update", "apt-get upgrade --simulate"]
    assert "apt_runs" in first.result
    assert first.result["cache_updated"] is True
    # The refresh found nothing new, and apt left the lists' times as they were.
    age_lists(2 * DAY)
    # A later call of the same run whose package is installed: dpkg-query only.
    later = run_module("baseline_packages", fail2ban)
    assert ran(ok(later)) == [], later.ops
    assert os.path.isfile(stamp(repo_host))
    assert [op for op in later.ops if op and "\trun dpkg-query " not in op] == [], later.ops
    # The next run, within the hour: no refresh, and no upgrade check (nothing it depends on changed).
    again = run_module("baseline_packages", bootstrap)
    assert ran(ok(again)) == [], again.ops
    assert again.result["changed"] is False and again.result["upgrade_checked"] is False
    # An hour later (the stamp is older than the window): one refresh again, and only one.
    old = time.time() - HOUR - 60
    os.utime(stamp(repo_host), (old, old))
    due = run_module("baseline_packages", bootstrap)
    assert ran(ok(due))[0] == "apt-get update"
    assert ran(ok(run_module("baseline_packages", fail2ban))) == []


def test_a_call_that_installs_within_the_window_installs_without_refreshing(repo_host, run_module):
    ok(run_module("baseline_packages", {**repo_host, "cache_valid_time": 0, "present": [EXTRA]}))
    sh(["dpkg", "--purge", EXTRA])
    age_lists(2 * DAY)
    done = run_module("baseline_packages", {**repo_host, "present": [EXTRA]})
    assert ran(ok(done)) == ["apt-get install"], done.ops
    assert done.result["installed"] == [EXTRA] and done.result["cache_updated"] is False
    assert sh(["dpkg-query", "--show", "--showformat=${db:Status-Status}", EXTRA]).stdout == "installed"
    # A purge needs no package lists at all.
    age_lists(2 * DAY)
    os.remove(stamp(repo_host))
    purge = run_module("baseline_packages", {**repo_host, "absent": [EXTRA]})
    assert ran(ok(purge)) == ["apt-get install"], purge.ops
    assert purge.result["purged"] == [EXTRA]


def test_a_held_pending_update_is_checked_once_while_nothing_it_depends_on_changes(repo_host, run_module):
    bootstrap = {**repo_host, "upgrade": "safe"}
    first = run_module("baseline_packages", bootstrap)
    assert ran(ok(first)) == ["apt-get update", "apt-get upgrade --simulate"]
    # apt has a newer bulwark-fake and keeps it back (held): nothing upgraded, the check is recorded anyway.
    assert "bulwark-fake" in sh(["apt-get", "upgrade", "--simulate"]).stdout
    assert first.result["upgraded"] == [] and first.result["changed"] is False
    for _unused in range(2):
        again = run_module("baseline_packages", bootstrap)
        assert ran(ok(again)) == [] and again.result["upgrade_checked"] is False, again.ops
    # Check mode reads the same record.
    predicted = run_module("baseline_packages", bootstrap, check_mode=True)
    assert ran(ok(predicted)) == [] and predicted.result["changed"] is False
    # What the upgrade depends on changed (dpkg's database): checked again, once.
    sh(["apt-mark", "unhold", FAKE])
    sh(["apt-mark", "hold", FAKE])
    changed = run_module("baseline_packages", bootstrap)
    assert ran(ok(changed)) == ["apt-get upgrade --simulate"]
    assert ran(ok(run_module("baseline_packages", bootstrap))) == []


def test_a_failed_refresh_records_nothing_and_the_next_call_refreshes(repo_host, run_module, tmp_path):
    with open("/etc/apt/sources.list.d/bulwark-test.list", "w", encoding="utf-8") as out:
        out.write(f"deb [trusted=yes] file:{tmp_path}/missing ./\n")
    failed = run_module("baseline_packages", {**repo_host, "upgrade": "safe"})
    assert failed.result.get("failed") and "apt-get update failed" in failed.result["msg"], failed
    assert not os.path.exists(stamp(repo_host))
    assert ran(failed) == ["apt-get update"]


def test_an_update_that_reached_no_mirror_records_no_refresh(repo_host, run_module):
    # apt-get update succeeds (exit 0) when a mirror does not answer (none listens on port 9 here).
    with open("/etc/apt/sources.list.d/bulwark-test.list", "a", encoding="utf-8") as out:
        out.write("deb http://127.0.0.1:9/debian bookworm main\n")  # refused at once
    with open("/etc/apt/apt.conf.d/90bulwark-test", "w", encoding="utf-8") as out:
        out.write('Acquire::Retries "0";\n')  # no back-off between tries: seconds per run otherwise
    for _unused in range(2):
        done = run_module("baseline_packages", {**repo_host, "upgrade": "safe"})
        assert ran(ok(done))[0] == "apt-get update"
        assert done.result["cache_updated"] is False and not os.path.exists(stamp(repo_host))
        assert "apt-get update could not fetch every package index" in str(done.result.get("warnings"))
        age_lists(2 * DAY)


def test_a_run_killed_at_any_step_of_the_refresh_leaves_no_record_of_a_refresh_it_did_not_finish(
    repo_host, run_module
):
    # Operations: 1 dpkg-query, 2 apt-get update, 3 the state directory, 4 the stamp.
    for step in (2, 3, 4):
        killed = run_module("baseline_packages", {**repo_host, "upgrade": "safe"}, fault=f"kill:{step}")
        assert killed.result is None, (step, killed)
        assert not os.path.exists(stamp(repo_host)), step
        age_lists(2 * DAY)  # a refresh that went through but found nothing new
    done = run_module("baseline_packages", {**repo_host, "upgrade": "safe"})
    assert ran(ok(done))[0] == "apt-get update"
    assert os.path.isfile(stamp(repo_host))
