"""The baseline's packages: what to install, purge and upgrade, as one apt transaction (pure).

The installed set comes from one `dpkg-query`; what an install or upgrade would do from `apt-get -s`.
An upgrade's outcome depends only on the package lists, the installed packages and apt's
configuration: when none of them changed since a check that left nothing to upgrade (their
fingerprint is kept on the host), the check is not repeated. That keeps a no-change run off apt's
slow dependency solver without ever skipping updates that arrived since.

When the lists were last refreshed is this collection's own record (a stamp written after each successful
`apt-get update`), not the lists' modification times: apt keeps a list's time when nothing new came, and sets
it to the mirror's, so lists a minute old can look a day old, and every run would refresh them again.
"""

import re

UPGRADES = ("none", "safe")
CACHE_VALID_TIME = 3600
# In the module's state_dir: the last successful refresh (the file's time), and the upgrade check's record.
REFRESH_STAMP = "apt-refresh.stamp"
UPGRADE_STAMP = "apt-upgrade.stamp"
# A refresh time this far ahead of the clock is not believed (the clock was set back since): refresh.
CLOCK_SKEW = 5
# Seconds to wait for the package manager's locks: a cloud host's first-boot unattended-upgrades run outlasts
# the 60 s of ansible.builtin.apt's lock_timeout.
LOCK_TIMEOUT = 300
# The locks apt and dpkg hold through a transaction (an install, an upgrade: the frontend's, dpkg's own, the
# download cache's), and the one `apt-get update` holds.
DPKG_LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/cache/apt/archives/lock")
LISTS_LOCKS = ("/var/lib/apt/lists/lock",)
# Given to every apt and dpkg command (never set in the module's own environment): they must never stop to
# ask (a conffile prompt, a debconf question). needrestart stays out of the transaction: restarting
# apt-listchanges.service from inside it waits for the dpkg lock apt holds, forever (seen on Debian 13);
# the handlers restart what bootstrap changes.
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_SUSPEND": "1"}
# apt's words when another process holds one of them (apt 2.6 and 3.0).
_LOCK_FAILURE = re.compile(r"Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock")
# apt-get update's words (on stderr, with exit status 0) for an index it could not fetch: a mirror down, no
# network. Such an update is not a refresh.
_FETCH_FAILURE = re.compile(r"^[WE]: (Failed to fetch|Some index files failed to download)", re.M)
# Debian policy: lower case letters, digits, + - . ; at least two characters, starting alphanumeric.
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# apt-get -s: "Inst name [old] (new ...)", "Remv name [old]", "Purg name [old]".
_SIMULATED = re.compile(r"^(Inst|Remv|Purg) (\S+)(?: \[([^\]]+)\])?(?: \((\S+))?", re.M)


class PackageSpecError(ValueError):
    """Bad input; the message names the option and index (present[2])."""


def validate(present, absent, upgrade):
    for option, names in (("present", present), ("absent", absent)):
        if not isinstance(names, list):
            raise PackageSpecError(f"{option}: a list of package names is required")
        for index, name in enumerate(names):
            if not isinstance(name, str) or not _PACKAGE.fullmatch(name):
                raise PackageSpecError(f"{option}[{index}]: {name!r} is not a Debian package name")
    both = sorted(set(present) & set(absent))
    if both:
        raise PackageSpecError(f"absent: {both[0]} is also in present")
    if upgrade not in UPGRADES:
        raise PackageSpecError(f"upgrade: {upgrade!r} is not one of {', '.join(UPGRADES)}")


def validate_times(cache_valid_time, lock_timeout):
    """Both are seconds, 0 or more (a number in a string, as a role's variable may give it, is fine)."""
    for option, value in (("cache_valid_time", cache_valid_time), ("lock_timeout", lock_timeout)):
        number = value
        if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            raise PackageSpecError(f"{option}: {value!r} is not a number of seconds")
        if number < 0:
            raise PackageSpecError(f"{option}: {number} is below 0")


def lock_failure(message):
    """Whether apt failed because another process holds one of its locks."""
    return bool(_LOCK_FAILURE.search(message or ""))


def waiting_for_lock(path, pid, command):
    return f"waiting for the package manager's lock {path}, held by process {pid} ({command})"


def lock_timed_out(path, pid, command, waited, applied):
    """The failure when lock_timeout is spent; `applied` says what this run did before it (empty: nothing)."""
    done = f"Already applied: {applied}" if applied else "Nothing was applied"
    return (
        f"lock_timeout: the package manager's lock {path} is still held by process {pid} ({command})"
        f" after {waited} s. {done}"
    )


def refresh_due(now, refreshed, cache_valid_time, lists_present, needed):
    """Whether this call refreshes the package lists.

    `needed`: whether the call reaches apt at all (packages to install, or an upgrade to check); a call whose
    packages are all installed never refreshes. `refreshed`: the times (seconds) of the refreshes known (this
    collection's stamp, apt's periodic stamp, the lists directory's last change), None for those missing;
    the newest counts. Lists the host does not have yet are always due, and so is every call with
    cache_valid_time 0."""
    if not needed:
        return False
    known = [when for when in refreshed if when is not None and when <= now + CLOCK_SKEW]
    if not lists_present or not known or cache_valid_time == 0:
        return True
    return now - max(known) > cache_valid_time


def refresh_complete(stderr):
    """Whether an `apt-get update` that succeeded fetched every index (it succeeds without some)."""
    return not _FETCH_FAILURE.search(stderr or "")


def installed(dpkg_output):
    """Names dpkg reports installed (`dpkg-query --show` with format '${Package} ${db:Status-Status}')."""
    found = set()
    for line in dpkg_output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "installed":
            found.add(parts[0])
    return found


def plan(present, absent, have):
    """(to install, to purge), each in the order given, without repeats."""
    missing = [name for i, name in enumerate(present) if name not in have and name not in present[:i]]
    remove = [name for i, name in enumerate(absent) if name in have and name not in absent[:i]]
    return missing, remove


def transaction_argv(missing, remove, install_recommends):
    """One apt-get call installing `missing` and purging `remove` (apt-get's "name-" removes)."""
    argv = ["apt-get", "install", "--yes", "--quiet", "--purge"]
    argv += ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
    argv.append("--install-recommends" if install_recommends else "--no-install-recommends")
    return argv + list(missing) + [name + "-" for name in remove]


def upgrade_argv(simulate, install_recommends):
    """apt-get's safe upgrade: new dependencies may be installed, nothing is removed."""
    argv = ["apt-get", "upgrade", "--with-new-pkgs", "--yes", "--quiet"]
    argv += ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
    argv.append("--install-recommends" if install_recommends else "--no-install-recommends")
    return argv + (["--simulate"] if simulate else [])


def simulated(output):
    """What an `apt-get -s` run would do: {"install", "upgrade" ("name old -> new"), "remove"} lists."""
    out = {"install": [], "upgrade": [], "remove": []}
    for action, name, old, new in _SIMULATED.findall(output):
        if action == "Inst" and old:
            out["upgrade"].append(f"{name} {old} -> {new}")
        elif action == "Inst":
            out["install"].append(name)
        else:
            out["remove"].append(name)
    return out


def fingerprint(entries):
    """The stamp text for [(path, size, mtime_ns)] of the lists, dpkg's status and apt's configuration."""
    return "".join(f"{path} {size} {mtime}\n" for path, size, mtime in sorted(entries))


def summary(missing, remove, upgrades):
    """The diff text: one line per package installed, purged or upgraded."""
    lines = [f"install {name}" for name in missing]
    lines += [f"purge {name}" for name in remove]
    lines += [f"upgrade {line}" for line in upgrades]
    return "".join(line + "\n" for line in lines)
