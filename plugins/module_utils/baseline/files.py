"""The baseline's files as one declarative list: validation, the plan and its diffs (pure).

Each entry says what one path must be: a file with this content (`file`), a directory (`directory`),
gone (`absent`), an existing path's mode and owner only (`attributes`, skipped where the path is
missing), or a file some package owns in which only some lines are ours (`lines`: each line replaces
the last line its pattern matches, or is appended). Templates are rendered on the controller: nothing
here reads a file format.
"""

import re

from ansible_collections.bulwark.hardening.plugins.module_utils.host.plan import (
    Attributes,
    Current,
    Directory,
    Plan,
    delete,
    replace,
)

from .. import text

STATES = ("file", "directory", "absent", "attributes", "lines")
# What each state needs and what it may have.
REQUIRED = {
    "file": ("content", "mode"),
    "directory": ("mode",),
    "absent": (),
    "attributes": ("mode",),
    "lines": ("lines",),
}
ALLOWED = {
    "file": {"content", "mode", "owner", "group", "secret", "validate"},
    "directory": {"mode", "owner", "group"},
    "absent": {"secret"},
    "attributes": {"mode", "owner", "group"},
    "lines": {"lines", "mode", "owner", "group", "validate"},
}
KEYS = {"path", "state"} | set().union(*ALLOWED.values())
# A user or group name as useradd accepts it (Debian's NAME_REGEX, with a machine account's '$').
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\$?")
_MODE = re.compile(r"[0-7]{3,4}")
REDACTED = "(secret: content not shown)\n"
REDACTED_OLD = "(secret: old content not shown)\n"
REDACTED_NEW = "(secret: new content not shown)\n"


class BaselineSpecError(ValueError):
    """Bad input; the message names the entry and the field (files[3].mode)."""


def _mode(value, where):
    # A mode is written as a string of octal digits: YAML reads an unquoted 0644 as the integer 420.
    if not isinstance(value, str) or not _MODE.fullmatch(value):
        raise BaselineSpecError(f"{where}: {value!r} is not a mode (a quoted octal string such as '0644')")
    mode = int(value, 8)
    if mode & 0o7000:
        raise BaselineSpecError(
            f"{where}: {value!r} sets setuid, setgid or sticky bits, which the baseline never does"
        )
    return mode


def _name(value, where):
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise BaselineSpecError(f"{where}: {value!r} is not a user or group name")
    return value


def _text(value, where, multiline):
    if not isinstance(value, str):
        raise BaselineSpecError(f"{where}: a string is required, not {type(value).__name__}")
    bad = text.control_character(value, multiline=multiline)
    if bad:
        raise BaselineSpecError(f"{where}: the control character {bad} is not allowed")
    return value


def _lines(value, where):
    if not isinstance(value, list) or not value:
        raise BaselineSpecError(f"{where}: a non-empty list of {{regexp, line}} is required")
    edits = []
    for index, item in enumerate(value):
        place = f"{where}[{index}]"
        if not isinstance(item, dict) or set(item) != {"regexp", "line"}:
            raise BaselineSpecError(f"{place}: exactly the keys regexp and line are required")
        line = _text(item["line"], f"{place}.line", multiline=False)
        pattern = _text(item["regexp"], f"{place}.regexp", multiline=False)
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise BaselineSpecError(
                f"{place}.regexp: {pattern!r} is not a regular expression ({exc})"
            ) from None
        if not compiled.search(line):
            # Otherwise the next run would append the line once more.
            raise BaselineSpecError(f"{place}: the line {line!r} does not match its own regexp")
        edits.append((compiled, line))
    return edits


def _validate_argv(value, where):
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise BaselineSpecError(f"{where}: a command as a non-empty list of strings is required")
    if "%s" not in value:
        raise BaselineSpecError(f"{where}: one argument must be %s (the file to check)")
    if not text.plain_absolute_path(value[0]) and not re.fullmatch(r"[A-Za-z0-9._+-]+", value[0]):
        raise BaselineSpecError(f"{where}[0]: {value[0]!r} is not a command name or a plain absolute path")
    for index, arg in enumerate(value):
        _text(arg, f"{where}[{index}]", multiline=False)
    return list(value)


def validate(entries):
    """The entries, normalised (mode as int, defaults filled in); BaselineSpecError names the first fault."""
    if not isinstance(entries, list):
        raise BaselineSpecError(f"files: a list is required, not {type(entries).__name__}")
    out, seen = [], {}
    for index, entry in enumerate(entries):
        where = f"files[{index}]"
        if not isinstance(entry, dict):
            raise BaselineSpecError(f"{where}: a dictionary is required, not {type(entry).__name__}")
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise BaselineSpecError(f"{where}: unknown key {unknown[0]!r}")
        path = entry.get("path")
        if not text.plain_absolute_path(path):
            raise BaselineSpecError(f"{where}.path: {path!r} is not a plain absolute path")
        if path in seen:
            raise BaselineSpecError(f"{where}.path: {path} is already files[{seen[path]}]")
        seen[path] = index
        try:
            out.append(_entry(index, entry))
        except BaselineSpecError as exc:
            raise BaselineSpecError(f"{exc} (for {path})") from None
    return out


def _entry(index, entry):
    where, path = f"files[{index}]", entry["path"]
    state = entry.get("state", "file")
    if state not in STATES:
        raise BaselineSpecError(f"{where}.state: {state!r} is not one of {', '.join(STATES)}")
    extra = sorted(set(entry) - ALLOWED[state] - {"path", "state"})
    if extra:
        raise BaselineSpecError(f"{where}.{extra[0]}: not used with state {state}")
    for key in REQUIRED[state]:
        if entry.get(key) is None:
            raise BaselineSpecError(f"{where}.{key}: required with state {state}")
    secret = entry.get("secret", False)
    if not isinstance(secret, bool):
        raise BaselineSpecError(f"{where}.secret: true or false, not {secret!r}")
    return {
        "index": index,
        "path": path,
        "state": state,
        "secret": secret,
        "mode": _mode(entry["mode"], f"{where}.mode") if entry.get("mode") is not None else None,
        "owner": _name(entry.get("owner", "root"), f"{where}.owner"),
        "group": _name(entry.get("group", "root"), f"{where}.group"),
        "content": _text(entry["content"], f"{where}.content", multiline=True) if state == "file" else None,
        "lines": _lines(entry["lines"], f"{where}.lines") if state == "lines" else None,
        "validate": _validate_argv(entry["validate"], f"{where}.validate") if entry.get("validate") else None,
    }


def edit_lines(current, edits):
    """current with each (pattern, line): the last matching line replaced by line, or line appended."""
    lines = current.splitlines()
    for pattern, line in edits:
        matches = [i for i, existing in enumerate(lines) if pattern.search(existing)]
        if matches:
            lines[matches[-1]] = line
        else:
            lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""


def _attributes(mode, owner, group):
    return f"mode {mode:04o}, owner {owner}:{group}\n"


def plan(entries, live, ids, check_mode=False):
    """What to do for each entry whose path differs from it.

    live: path -> {"kind": file|directory|link|other, "mode", "uid", "gid", "content"} or None (absent).
    ids: {"user": {name: uid or None}, "group": {name: gid or None}} as this host resolves them.
    check_mode: a `lines` file that is not there yet (its package is installed by the same run) is
    predicted as created with the lines; in a real run it is an error.

    Returns (changes, skipped): changes are dicts (index, path, action, content, mode, uid, gid, diff),
    skipped maps a path to why it was left alone.
    """
    changes, skipped = [], {}
    for entry in entries:
        where, path, state = f"files[{entry['index']}]", entry["path"], entry["state"]
        now = live.get(path)
        if now is not None and now["kind"] in ("link", "other") and state != "absent":
            kind = "a symbolic link" if now["kind"] == "link" else "not a regular file or directory"
            raise BaselineSpecError(f"{where}.path: {path} is {kind}: refusing to change it")
        if state == "absent":
            change = _plan_absent(entry, now, where)
        elif state == "attributes" and now is None:
            _ids(entry, ids, where)  # an unknown owner is refused even where the path is missing
            skipped[path] = "not on this host"
            change = None
        elif state in ("directory", "attributes"):
            change = _plan_directory_or_attributes(entry, now, ids, where)
        else:
            change = _plan_file(entry, now, ids, where, check_mode)
        if change is not None:
            changes.append(change)
    return changes, skipped


def _plan_absent(entry, now, where):
    if now is None:
        return None
    if now["kind"] == "directory":
        raise BaselineSpecError(f"{where}.path: {entry['path']} is a directory: refusing to remove it")
    before = REDACTED if entry["secret"] else (now.get("content") or "")
    return _change(entry, "remove", None, None, ids=(-1, -1), diff=(before, ""))


def _plan_directory_or_attributes(entry, now, ids, where):
    uid, gid = _ids(entry, ids, where)
    if entry["state"] == "directory":
        _retype(now, "directory", where)
        if now is None:
            after = "directory " + _attributes(entry["mode"], entry["owner"], entry["group"])
            return _change(entry, "directory", None, entry["mode"], ids=(uid, gid), diff=("", after))
    if (now["mode"], now["uid"], now["gid"]) == (entry["mode"], uid, gid):
        return None
    before = _attributes(now["mode"], _who(ids, "user", now["uid"]), _who(ids, "group", now["gid"]))
    after = _attributes(entry["mode"], entry["owner"], entry["group"])
    action = "directory" if now["kind"] == "directory" else "attributes"
    return _change(entry, action, None, entry["mode"], ids=(uid, gid), diff=(before, after))


def _plan_file(entry, now, ids, where, check_mode):
    uid, gid = _ids(entry, ids, where)
    _retype(now, "file", where)
    current = now["content"] if now else ""
    if entry["state"] == "lines":
        if now is None and not check_mode:
            raise BaselineSpecError(
                f"{where}.path: {entry['path']} does not exist (its lines are edited, not created)"
            )
        content = edit_lines(current, entry["lines"])
        mode = entry["mode"] if entry["mode"] is not None else (now["mode"] if now else 0o644)
    else:
        content, mode = entry["content"], entry["mode"]
    if now is not None and (current, now["mode"], now["uid"], now["gid"]) == (content, mode, uid, gid):
        return None
    before, after = _file_diff(entry, now, current, content)
    if now is not None and (now["mode"], now["uid"], now["gid"]) != (mode, uid, gid):
        old = _attributes(now["mode"], _who(ids, "user", now["uid"]), _who(ids, "group", now["gid"]))
        new = _attributes(mode, entry["owner"], entry["group"])
        before, after = f"# {old}{before}", f"# {new}{after}"
    action = "write" if now is None or content != current else "attributes"
    return _change(entry, action, content, mode, ids=(uid, gid), diff=(before, after))


def _file_diff(entry, now, current, content):
    """(before, after) of a file's content, a secret's never shown."""
    if not entry["secret"]:
        return (current if now is not None else ""), content
    if now is None:
        return "", REDACTED
    if content != current:
        return REDACTED_OLD, REDACTED_NEW
    return REDACTED, REDACTED


def regular_homes(accounts, login_defs):
    """The home directories of regular accounts (UID_MIN <= uid < 65534, the home under /home/), from
    (name, uid, home) rows and the text of /etc/login.defs (UID_MIN 1000 where it says nothing)."""
    found = re.search(r"^\s*UID_MIN\s+(\d+)\s*$", login_defs, re.M)
    uid_min = int(found.group(1)) if found else 1000
    return sorted(
        {home for _name, uid, home in accounts if uid_min <= uid < 65534 and home.startswith("/home/")}
    )


def plan_homes(homes, live, at_most):
    """Each home that is a directory with mode bits beyond at_most loses them; owner and the other bits
    stay, setgid included (a home that is missing or a link is left alone: its account's business)."""
    changes = []
    for path in homes:
        now = live.get(path)
        extra = now["mode"] & 0o777 & ~at_most if now and now["kind"] == "directory" else 0
        if not extra:
            continue
        mode = now["mode"] & ~extra
        entry = {"index": None, "path": path, "validate": None}
        diff = (f"mode {now['mode']:04o}\n", f"mode {mode:04o}\n")
        changes.append(_change(entry, "directory", None, mode, ids=(-1, -1), diff=diff))
    return changes


def validate_at_most(value):
    """homes_mode_at_most: None (leave homes alone) or a mode such as '0750'."""
    return None if value is None else _mode(value, "homes_mode_at_most")


def _retype(now, kind, where):
    """A directory where a file should be (or the reverse) is refused, not replaced."""
    if now is not None and now["kind"] != kind:
        raise BaselineSpecError(
            f"{where}.path: it is a {now['kind']} here, not a {kind}: refusing to replace it"
        )


def _ids(entry, ids, where):
    uid = ids["user"].get(entry["owner"])
    gid = ids["group"].get(entry["group"])
    if uid is None:
        raise BaselineSpecError(f"{where}.owner: there is no user {entry['owner']!r} on this host")
    if gid is None:
        raise BaselineSpecError(f"{where}.group: there is no group {entry['group']!r} on this host")
    return uid, gid


def _who(ids, kind, number):
    """The name for a uid or gid among the names asked about, else the number."""
    for name, value in ids[kind].items():
        if value == number:
            return name
    return str(number)


def _change(entry, action, content, mode, *, ids, diff):
    path = entry["path"]
    return {
        "index": entry["index"],
        "path": path,
        "action": action,
        "content": content,
        "mode": mode,
        "uid": ids[0],
        "gid": ids[1],
        "validate": entry["validate"],
        "secret": entry.get("secret", False),
        "diff": {"before_header": path, "after_header": path, "before": diff[0], "after": diff[1]},
    }


def _where(change):
    return "homes_mode_at_most" if change["index"] is None else f"files[{change['index']}]"


def _operation(change, now):
    """The host operation of one change, undone by putting back `now` (the path as it was)."""
    path, action, where = change["path"], change["action"], _where(change)
    what = f"{where} ({path}): {action}"
    back = None
    if now is not None:
        back = Attributes(path, now["mode"], now["uid"], now["gid"], directory=now["kind"] == "directory",
                          what=f"put back the mode and owner of {path}")  # fmt: skip
    if action == "remove":
        before = (
            Current(now["content"], now["mode"], now["uid"], now["gid"])
            if now["content"] is not None
            else None
        )
        return delete(path, before, what=what, secret=change["secret"])
    if action == "directory":
        return Directory(path, change["mode"], change["uid"], change["gid"], what=what, inverse=back)
    if action == "attributes":
        return Attributes(path, change["mode"], change["uid"], change["gid"], what=what, inverse=back)
    before = None if now is None else Current(now["content"], now["mode"], now["uid"], now["gid"])
    verify = tuple("{}" if arg == "%s" else arg for arg in change["validate"]) if change["validate"] else None
    return replace(path, change["content"], before, what=what, mode=change["mode"], uid=change["uid"],
                   gid=change["gid"], verify=verify, secret=change["secret"])  # fmt: skip


def host_plan(changes, live):
    """The changes as host operations (live: each path as read, for the inverses), with their diff."""
    plan = Plan(diff=[change["diff"] for change in changes])
    return plan.add(*(_operation(change, live.get(change["path"])) for change in changes))
