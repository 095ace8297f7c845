from pathlib import Path

import pytest

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
