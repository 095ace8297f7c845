"""Render the managed drop-in from options and Match blocks; keep the Include first in sshd_config.

Order is deterministic: global keywords in the order the caller gave them, then the Match blocks in
the order given (each block's keywords in the order given). Same input, same bytes.
"""

from ansible_collections.bulwark.hardening.plugins.module_utils import text as text_checks
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.keywords import (
    COMMA,
    REPEAT,
    SCALAR,
    SPACE,
    KeywordError,
    canonical,
    list_style,
)

HEADER = (
    "# Managed by bulwark.hardening (module sshd_config). Local changes are overwritten.\n"
    "# This file is read before the other drop-ins: for most keywords sshd keeps the first value it sees.\n"
)


class RenderError(ValueError):
    """Bad input; the message names the option, keyword or value."""


def _scalar(name, value, where):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A newline would start a directive of its own.
        found = text_checks.control_character(value)
        if found:
            raise RenderError(f"{where}: {name} value {value!r} contains the control character {found}")
        text = value.strip(" ")
        if not text:
            raise RenderError(f"{where}: {name} has an empty value")
        return text
    kind = type(value).__name__
    raise RenderError(f"{where}: {name} value must be a string, integer, boolean or list, not {kind}")


def render_keyword(name, value, where="options"):
    """Lines (without indentation) for one canonical keyword and its value."""
    style = list_style(name)
    if isinstance(value, (list, tuple)):
        if not value:
            raise RenderError(f"{where}: {name} has an empty list")
        items = [_scalar(name, item, where) for item in value]
        if style == REPEAT:
            return [f"{name} {item}" for item in items]
        if style == COMMA:
            return [f"{name} {','.join(items)}"]
        if style == SPACE:
            return [f"{name} {' '.join(items)}"]
        if style == SCALAR:
            raise RenderError(f"{where}: {name} takes a single value, not a list")
    return [f"{name} {_scalar(name, value, where)}"]


def _canonical_options(options, where, in_match):
    if not isinstance(options, dict):
        raise RenderError(f"{where} must be a dict of sshd keywords")
    seen = {}
    result = []
    for key, value in options.items():
        try:
            name = canonical(key, in_match=in_match)
        except KeywordError as exc:
            raise RenderError(f"{where}: {exc}") from None
        if name in seen:
            raise RenderError(f"{where}: {name} given twice ({seen[name]!r} and {key!r})")
        seen[name] = key
        result.append((name, value))
    return result


def render(options, match=None):
    """The drop-in text. RenderError names the first bad keyword, value or Match block."""
    lines = [HEADER.rstrip("\n")]
    for name, value in _canonical_options(options or {}, "options", in_match=False):
        lines.extend(render_keyword(name, value))
    for index, block in enumerate(match or []):
        where = f"match[{index}]"
        if not isinstance(block, dict) or set(block) - {"criteria", "options"}:
            raise RenderError(f"{where} must be a dict with keys criteria and options")
        criteria = block.get("criteria")
        if (
            not isinstance(criteria, str)
            or not criteria.strip(" ")
            or "#" in criteria
            or text_checks.control_character(criteria)
        ):
            raise RenderError(
                f"{where}.criteria must be a non-empty line without control characters or '#'"
                f" (e.g. 'Group sftp'), not {criteria!r}"
            )
        body = _canonical_options(block.get("options") or {}, f"{where}.options", in_match=True)
        if not body:
            raise RenderError(f"{where}.options is empty")
        lines.append("")
        lines.append(f"Match {criteria.strip(' ')}")
        for name, value in body:
            lines.extend("    " + line for line in render_keyword(name, value, f"{where}.options"))
    return "\n".join(lines) + "\n"


def include_line(dropin_dir):
    return f"Include {dropin_dir.rstrip('/')}/*.conf"


def _is_directive(line):
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _same_directive(line, wanted):
    return line.split() == wanted.split() or (
        [w.lower() for w in line.split()[:1]] == ["include"] and line.split()[1:] == wanted.split()[1:]
    )


def ensure_include_first(main_text, wanted):
    """main_text with `wanted` (an Include line) as its first directive; other copies before any Match go."""
    lines = main_text.splitlines()
    first = next((i for i, line in enumerate(lines) if _is_directive(line)), None)
    if first is not None and _same_directive(lines[first], wanted):
        return main_text
    kept = []
    in_match = False
    for line in lines:
        if _is_directive(line) and line.split()[0].lower() == "match":
            in_match = True
        if not in_match and _is_directive(line) and _same_directive(line, wanted):
            continue
        kept.append(line)
    first = next((i for i, line in enumerate(kept) if _is_directive(line)), len(kept))
    # Put it right before the first directive, so a leading comment block stays at the top.
    kept[first:first] = [wanted]
    return "\n".join(kept) + "\n"


def replace_include(main_text, wanted, replacement):
    """main_text with the `wanted` Include line pointed elsewhere (used for the temporary validation tree)."""
    out = []
    for line in main_text.splitlines():
        out.append(replacement if _is_directive(line) and _same_directive(line, wanted) else line)
    return "\n".join(out) + "\n"
