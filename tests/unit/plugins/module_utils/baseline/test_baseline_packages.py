from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import packages
from ansible_collections.bulwark.hardening.plugins.module_utils.baseline.packages import PackageSpecError

FIXTURES = Path(__file__).parent / "fixtures"


def test_installed_reads_dpkg_query_of_a_bare_and_of_a_hardened_host():
    bare = packages.installed((FIXTURES / "dpkg-query-bookworm.txt").read_text())
    hardened = packages.installed((FIXTURES / "dpkg-query-bookworm-hardened.txt").read_text())
    assert len(bare) == 143
    assert {"sudo", "openssh-server", "python3"} <= bare
    assert "auditd" not in bare
    assert {"auditd", "aide", "fail2ban", "nftables", "python3-apt"} <= hardened
    # Removed with its configuration left: not installed.
    assert packages.installed("telnet config-files\nsudo installed\n") == {"sudo"}


def test_plan_installs_what_is_missing_and_purges_what_is_there_in_the_order_given():
    have = packages.installed((FIXTURES / "dpkg-query-bookworm.txt").read_text())
    missing, remove = packages.plan(
        ["sudo", "auditd", "aide", "auditd"], ["telnet", "sudo-ldap", "openssh-client"], have
    )
    assert missing == ["auditd", "aide"]
    assert remove == ["openssh-client"]
    assert packages.plan(["sudo"], ["telnet"], have) == ([], [])


def test_one_transaction_installs_and_purges_without_prompts():
    argv = packages.transaction_argv(["auditd", "aide"], ["telnet"], install_recommends=False)
    assert argv == [
        "apt-get", "install", "--yes", "--quiet", "--purge",
        "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
        "--no-install-recommends", "auditd", "aide", "telnet-",
    ]  # fmt: skip


def test_simulated_upgrade_of_a_bare_bookworm_lists_each_update_with_its_versions():
    pending = packages.simulated((FIXTURES / "apt-get-s-upgrade-bookworm.txt").read_text())
    assert pending["install"] == [] and pending["remove"] == []
    assert len(pending["upgrade"]) == 18  # "18 upgraded, 0 newly installed" in the fixture
    assert pending["upgrade"][0] == "perl-base 5.36.0-7+deb12u3 -> 5.36.0-7+deb12u4"
    assert "zlib1g 1:1.2.13.dfsg-1 -> 1:1.2.13.dfsg-1+deb12u1" in pending["upgrade"]


def test_simulated_install_tells_new_packages_from_purges():
    pending = packages.simulated((FIXTURES / "apt-get-s-install-bookworm.txt").read_text())
    assert pending == {"install": ["libauparse0", "auditd"], "upgrade": [], "remove": ["sudo"]}
    assert packages.simulated("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n") == {
        "install": [],
        "upgrade": [],
        "remove": [],
    }


def test_the_fingerprint_changes_with_any_input_and_not_with_the_order_read():
    one = [("/var/lib/dpkg/status", 100, 5), ("/var/lib/apt/lists/a_Packages", 7, 1)]
    assert packages.fingerprint(one) == packages.fingerprint(list(reversed(one)))
    assert packages.fingerprint(one) != packages.fingerprint(
        [one[0], ("/var/lib/apt/lists/a_Packages", 7, 2)]
    )
    assert packages.fingerprint(one) != packages.fingerprint(one[:1])


def test_the_diff_has_one_line_per_package():
    assert packages.summary(["auditd"], ["telnet"], ["apt 2.6.1 -> 2.6.2"]) == (
        "install auditd\npurge telnet\nupgrade apt 2.6.1 -> 2.6.2\n"
    )
    assert packages.summary([], [], []) == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (["auditd", "Bad_Name"], [], "none"),
            r"present\[1\]: 'Bad_Name' is not a Debian package name",
        ),
        (
            (["auditd"], ["telnet", "x; rm"], "none"),
            r"absent\[1\]: 'x; rm' is not a Debian package name",
        ),
        ((["telnet"], ["telnet"], "none"), r"absent: telnet is also in present"),
        (([], [], "dist"), r"upgrade: 'dist' is not one of none, safe"),
        (("auditd", [], "safe"), r"present: a list of package names is required"),
    ],
)
def test_bad_input_is_refused_naming_the_option(args, message):
    with pytest.raises(PackageSpecError, match="^" + message):
        packages.validate(*args)


NOW = 1_800_000_000.0
HOUR, DAY = 3600, 86400


def test_lists_apt_left_old_are_not_refreshed_again_within_the_window_of_this_collections_own_stamp():
    # An hour after hardening: the lists keep the mirror's times (a day old), apt's periodic stamp is absent,
    # the collection's stamp says the lists were refreshed ten minutes ago.
    refreshed = [NOW - 600, None, NOW - DAY]
    assert packages.refresh_due(NOW, refreshed, HOUR, lists_present=True, needed=True) is False
    # What the lists' time alone (the old reading) would have concluded: a refresh at every run.
    assert packages.refresh_due(NOW, [None, None, NOW - DAY], HOUR, lists_present=True, needed=True) is True


def test_a_refresh_is_due_once_the_newest_known_refresh_is_older_than_the_window():
    assert packages.refresh_due(NOW, [NOW - HOUR - 1, None, NOW - DAY], HOUR, True, True) is True
    assert packages.refresh_due(NOW, [NOW - HOUR, None, NOW - DAY], HOUR, True, True) is False
    # apt's own daily refresh (its periodic stamp) counts as well as this collection's.
    assert packages.refresh_due(NOW, [NOW - DAY, NOW - 60, NOW - DAY], HOUR, True, True) is False
    # Never refreshed, by anyone: due.
    assert packages.refresh_due(NOW, [None, None, None], HOUR, True, True) is True


def test_a_call_with_nothing_to_install_or_upgrade_never_refreshes():
    # fail2ban's, the firewall's, the overlay's and the secrets' calls on a hardened host: dpkg-query only.
    assert packages.refresh_due(NOW, [None, None, NOW - 30 * DAY], HOUR, True, needed=False) is False
    assert packages.refresh_due(NOW, [None, None, None], HOUR, False, needed=False) is False


def test_lists_the_host_does_not_have_and_a_zero_window_are_always_due():
    assert packages.refresh_due(NOW, [NOW - 1, None, NOW - 1], HOUR, lists_present=False, needed=True) is True
    assert packages.refresh_due(NOW, [NOW - 1, None, NOW - 1], 0, lists_present=True, needed=True) is True


def test_a_refresh_time_ahead_of_the_clock_is_not_believed():
    # The clock was set back (or a stamp forged ahead): the stamp would otherwise hold refreshes off for good.
    ahead = NOW + DAY
    assert packages.refresh_due(NOW, [ahead, None, NOW - DAY], HOUR, True, True) is True
    assert packages.refresh_due(NOW, [ahead, None, NOW - 60], HOUR, True, True) is False
    # Within the tolerance of a clock's small steps, a stamp just written still counts.
    skew = NOW + packages.CLOCK_SKEW
    assert packages.refresh_due(NOW, [skew, None, NOW - DAY], HOUR, True, True) is False


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(NOW - 10 * DAY, NOW + 2 * DAY)), min_size=3, max_size=3),
    st.integers(0, 2 * DAY),
)
def test_due_exactly_when_no_believable_refresh_lies_within_the_window(refreshed, window):
    believable = [when for when in refreshed if when is not None and when <= NOW + packages.CLOCK_SKEW]
    expected = window == 0 or not believable or NOW - max(believable) > window
    assert packages.refresh_due(NOW, refreshed, window, True, True) is expected
    assert packages.refresh_due(NOW, refreshed, window, True, False) is False


def test_an_update_that_could_not_fetch_an_index_is_not_a_refresh():
    # apt-get update exits 0 when a mirror cannot be reached (Debian 12's apt 2.6 and 13's apt 3.0 alike).
    offline = (
        "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease"
        "  Temporary failure resolving 'deb.debian.org'\n"
        "W: Some index files failed to download. They have been ignored, or old ones used instead.\n"
    )
    assert packages.refresh_complete(offline) is False
    missing = "E: Failed to fetch file:/srv/repo/./Packages  File not found\n"
    assert packages.refresh_complete(missing) is False
    assert packages.refresh_complete("") is True
    assert packages.refresh_complete("W: https://example.org/ InRelease: Key is stored in legacy keyring\n")
