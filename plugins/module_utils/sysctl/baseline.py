"""Kernel parameters: validate, render the sysctl.d file, compare with the running kernel, classify refusals.

Inside a container /proc/sys is usually mounted read-only (or parts of it are), so a key can be right
in the file and still impossible to apply live. Such keys are reported as skipped with the reason, never
as a failure. A key this kernel does not have is a typo unless it is declared optional (a feature the
kernel may lack): then it is skipped, and the file marks it with sysctl.d's "-" (ignore if it fails).
Pure: the module reads /proc and acts on what these functions decide.
"""

import errno
import re

from ansible_collections.bulwark.hardening.plugins.module_utils import text as text_checks

# Matched with fullmatch: "kernel.sysrq\n" is not a key.
_KEY = re.compile(r"[a-z0-9_]+(\.[A-Za-z0-9_-]+)+")
HEADER = "# Managed by bulwark.hardening (sysctl_baseline): changes here are overwritten.\n"

REASONS = {
    errno.EROFS: "read-only here (/proc/sys is mounted read-only, as in a container)",
    errno.EACCES: "permission denied (the key is not writable from this namespace)",
    errno.EPERM: "not permitted (the key is not writable from this namespace)",
    errno.ENOENT: "not present in this kernel",
}


class SysctlSpecError(ValueError):
    """Invalid settings; the message names the bad key."""


class UnknownKeysError(SysctlSpecError):
    """Keys this kernel does not have and that are not declared optional."""

    def __init__(self, keys):
        self.keys = keys
        super().__init__(
            "the kernel does not know "
            + ", ".join(f"settings.{key}" for key in keys)
            + " (a typo? a key that may be absent belongs in optional_keys)"
        )


def normalise(value):
    """sysctl values compare by their blank-separated words ("4\t4 1  7" == "4 4 1 7")."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return " ".join(str(value).split())


def validate(settings):
    """dict key -> value (int or str) -> dict key -> normalised string, sorted by key."""
    if not isinstance(settings, dict):
        raise SysctlSpecError("settings must be a dict of sysctl key to value")
    result = {}
    for key in sorted(settings, key=str):
        value = settings[key]
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise SysctlSpecError(
                f"settings: {key!r} is not a sysctl key (dotted, like net.ipv4.tcp_syncookies)"
            )
        if value is None or isinstance(value, (list, dict)):
            raise SysctlSpecError(f"settings.{key}: the value must be a number or a string")
        text = normalise(value)
        # The kernel separates words with tabs ("4\t4 1 7"); any other control character is refused.
        if not text or "\n" in str(value) or text_checks.control_character(str(value), multiline=True):
            raise SysctlSpecError(
                f"settings.{key}: the value must be a non-empty single line without control characters"
            )
        result[key] = text
    return result


def validate_optional(keys):
    """optional_keys: a list of sysctl keys -> frozenset; SysctlSpecError names the bad entry."""
    if not isinstance(keys, (list, tuple)):
        raise SysctlSpecError("optional_keys must be a list of sysctl keys")
    for index, key in enumerate(keys):
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise SysctlSpecError(f"optional_keys[{index}]: {key!r} is not a sysctl key")
    return frozenset(keys)


def validate_path(path):
    """The sysctl.d file: systemd-sysctl reads only files ending in .conf."""
    if not text_checks.plain_absolute_path(path or "") or not path.endswith(".conf"):
        raise SysctlSpecError(f"path: {path!r} must be a plain absolute path ending in .conf")
    return path


def proc_path(key):
    return "/proc/sys/" + key.replace(".", "/")


def render(settings, optional=frozenset()):
    """The sysctl.d file text for validated settings; optional keys carry "-" (ignored where absent)."""
    return HEADER + "".join(
        f"{'-' if key in optional else ''}{key} = {value}\n" for key, value in settings.items()
    )


def readonly_mounts(mountinfo):
    """Mount points under /proc that are read-only, from /proc/self/mountinfo text; plus all mount points."""
    readonly, points = set(), set()
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        point, options = fields[4], fields[5].split(",")
        points.add(point)
        if "ro" in options:
            readonly.add(point)
    return readonly, points


def is_readonly(path, readonly, points):
    """Whether the deepest mount holding path is read-only."""
    best = ""
    for point in points:
        prefix = point.rstrip("/") + "/"
        if (path == point or path.startswith(prefix)) and len(point) > len(best):
            best = point
    return best in readonly


def plan(settings, live, readonly=frozenset(), points=frozenset(), optional=frozenset()):
    """settings (validated), live {key: value or None} -> (to_apply, unchanged, skipped {key: reason}).

    A key whose live value already matches is unchanged even where it is read-only; one that differs and
    sits on a read-only mount is skipped (predicted, so check mode reports the same as a real run).
    A key the kernel does not have is skipped only when optional; otherwise UnknownKeysError names it.
    """
    unknown = sorted(key for key in settings if live.get(key) is None and key not in optional)
    if unknown:
        raise UnknownKeysError(unknown)
    to_apply, unchanged, skipped = [], [], {}
    for key, value in settings.items():
        current = live.get(key)
        if current is None:
            skipped[key] = REASONS[errno.ENOENT] + " (declared optional)"
        elif normalise(current) == value:
            unchanged.append(key)
        elif is_readonly(proc_path(key), readonly, points):
            skipped[key] = REASONS[errno.EROFS]
        else:
            to_apply.append(key)
    return to_apply, unchanged, skipped


def reason(error_number):
    """Why a write to /proc/sys failed, or None when the failure is the value's fault (EINVAL)."""
    return REASONS.get(error_number)
