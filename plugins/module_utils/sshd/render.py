"""Render the managed drop-in from options and Match blocks; keep the Include first in sshd_config.

Order is deterministic: global keywords in the order the caller gave them, then the Match blocks in
the order given (each block's keywords in the order given). Same input, same bytes.
"""

import re

from ansible_collections.bulwark.hardening.plugins.module_utils import text as text_checks
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.keywords import (
    COMMA,
    KEYWORDS,
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


# How sshd reads a line after its keyword (OpenSSH's argv_split): words are split on blanks; a word may be
# double- or single-quoted, inside which backslash escapes the quote and itself; a word that starts with '#'
# ends the line; one '=' right after the keyword is skipped. A value is written bare only when none of that
# can apply to it, else double-quoted, so that sshd reads back exactly the one word that was meant.
_BARE_WORD = re.compile(r"[^\s\"'\\#=][^\s\"'\\]*")

# Keywords whose value sshd takes as the rest of the line, unsplit and unquoted (a command line that the
# user's shell, or sshd itself for the AuthorizedKeys commands, splits later): they cannot be quoted, so
# a value that sshd would read differently (a lone quote, a leading '=' or '#') is refused instead.
REST_OF_LINE = frozenset(
    {"ForceCommand", "AuthorizedKeysCommand", "AuthorizedPrincipalsCommand", "VersionAddendum"}
)
# Subsystem's value is a name, then a command line (the same refusals).
COMMAND_ITEMS = frozenset({"Subsystem"})
# Keywords that take several words on one line: a string value is those words, split on blanks (as in
# sshd_config itself: "AllowUsers alice bob"); a list gives the words one by one.
WORDS = frozenset({name for name in KEYWORDS if list_style(name) == SPACE} | {"AcceptEnv"})
# sshd_config(5) TOKENS: the %-specifiers each keyword expands when a user logs in. Any other '%' there
# makes sshd fail that login (percent_expand is fatal), which `sshd -t` does not see: refused here.
PERCENT_TOKENS = {
    "AuthorizedKeysFile": "%hUu",
    "AuthorizedPrincipalsFile": "%hUu",
    "ChrootDirectory": "%hUu",
    "AuthorizedKeysCommand": "%CDfhktUu",
    "AuthorizedPrincipalsCommand": "%CDFfhiKksTtUu",
    "RDomain": "%D",
}
_PERCENT = re.compile(r"%(.?)", re.DOTALL)

# Match criteria (sshd_config(5) Match): each takes one pattern list, except All (alone) and Invalid-User
# (OpenSSH 10.0+), which take none.
MATCH_CRITERIA = {
    name.lower(): name
    for name in (
        "All",
        "User",
        "Group",
        "Host",
        "LocalAddress",
        "LocalPort",
        "RDomain",
        "Address",
        "Invalid-User",
    )
}
_NO_PATTERN = frozenset({"All", "Invalid-User"})
# A pattern list: names, addresses, networks, ports, wildcards and negation; nothing sshd would split or
# unquote (blank, quote, '=', backslash) and no '#'.
_MATCH_PATTERN = re.compile(r"[A-Za-z0-9._@*?!,:/$+-]+")


def sshd_words(text):
    """The words sshd reads from the rest of a line (OpenSSH misc.c argv_split, comments ending the line).

    Raises ValueError on an unterminated quote, which sshd refuses as "invalid quotes".
    """
    words, i, n = [], 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        word, quote = [], None
        while i < n:
            char = text[i]
            if (
                char == "\\"
                and i + 1 < n
                and (text[i + 1] in "\"'\\" or (quote is None and text[i + 1] == " "))
            ):
                word.append(text[i + 1])
                i += 2
                continue
            if quote is None and char in " \t":
                break
            if quote is None and char in "\"'":
                quote = char
            elif quote is not None and char == quote:
                quote = None
            else:
                word.append(char)
            i += 1
        if quote is not None:
            raise ValueError("an unterminated quote")
        words.append("".join(word))
    return words


def quote_word(word):
    """word as exactly one sshd word: bare when sshd reads it unchanged, else double-quoted and escaped."""
    if _BARE_WORD.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(name, value, where):
    """A string value with its control characters refused, its surrounding spaces dropped, not empty."""
    # A newline would start a directive of its own.
    found = text_checks.control_character(value)
    if found:
        raise RenderError(f"{where}: {name} value {value!r} contains the control character {found}")
    text = value.strip(" ")
    if not text:
        raise RenderError(f"{where}: {name} has an empty value")
    allowed = PERCENT_TOKENS.get(name)
    if allowed is not None:
        for match in _PERCENT.finditer(text):
            if not match.group(1) or match.group(1) not in allowed:
                tokens = ", ".join(f"%{c}" for c in allowed)
                raise RenderError(
                    f"{where}: {name} value {value!r} has {match.group(0)!r}: {name} knows only the tokens "
                    f"{tokens} (write a literal '%' as '%%')"
                )
    return text


def _command(name, text, where, value):
    """A rest-of-line value: refused where sshd would read it otherwise than as written."""
    if text[0] in "#=":
        raise RenderError(f"{where}: {name} value {value!r} may not start with {text[0]!r}")
    try:
        words = sshd_words(text)
    except ValueError as exc:
        raise RenderError(f"{where}: {name} value {value!r} has {exc} (sshd refuses the line)") from None
    return words


def _word(name, value, where):
    """One sshd word for a scalar or a list item (bool yes/no, int, or text quoted as needed)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = _text(name, value, where)
        if name in REST_OF_LINE:
            _command(name, text, where, value)
            return text
        if name in COMMAND_ITEMS:
            if len(_command(name, text, where, value)) < 2:
                raise RenderError(f"{where}: {name} value {value!r} must be a name and a command")
            return text
        return quote_word(text)
    kind = type(value).__name__
    raise RenderError(f"{where}: {name} value must be a string, integer, boolean or list, not {kind}")


def render_keyword(name, value, where="options"):
    """Lines (without indentation) for one canonical keyword and its value."""
    style = list_style(name)
    if isinstance(value, (list, tuple)):
        if not value:
            raise RenderError(f"{where}: {name} has an empty list")
        if style == SCALAR:
            raise RenderError(f"{where}: {name} takes a single value, not a list")
        if style == COMMA:
            items = []
            for item in value:
                text = _text(name, item, where) if isinstance(item, str) else _word(name, item, where)
                if "," in text:
                    raise RenderError(f"{where}: {name} item {item!r} holds a ',': give one item per element")
                items.append(text)
            return [f"{name} {quote_word(','.join(items))}"]
        items = [_word(name, item, where) for item in value]
        if style == REPEAT:
            return [f"{name} {item}" for item in items]
        return [f"{name} {' '.join(items)}"]
    if isinstance(value, str) and name in WORDS:
        text = _text(name, value, where)
        return [f"{name} {' '.join(quote_word(word) for word in text.split(' ') if word)}"]
    return [f"{name} {_word(name, value, where)}"]


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


def match_line(criteria, where):
    """The Match line for criteria such as "Group sftp Address 10.0.0.0/8": each criterion named, each
    pattern list one word; RenderError names what is wrong."""
    usage = (
        f"{where}.criteria must be a non-empty line of Match criteria and their patterns"
        f" (e.g. 'Group sftp'), not {criteria!r}"
    )
    if not isinstance(criteria, str) or text_checks.control_character(criteria):
        raise RenderError(usage)
    words = criteria.strip(" ").split(" ")
    words = [word for word in words if word]
    if not words:
        raise RenderError(usage)
    out, index = [], 0
    while index < len(words):
        name = MATCH_CRITERIA.get(words[index].lower())
        if name is None:
            known = ", ".join(MATCH_CRITERIA.values())
            raise RenderError(f"{usage}: {words[index]!r} is not a Match criterion ({known})")
        out.append(name)
        index += 1
        if name in _NO_PATTERN:
            continue
        if index == len(words):
            raise RenderError(f"{usage}: {name} needs a pattern")
        pattern = words[index]
        if not _MATCH_PATTERN.fullmatch(pattern):
            raise RenderError(
                f"{usage}: the pattern {pattern!r} of {name} may hold letters, digits"
                " and . _ @ * ? ! , : / $ + -"
            )
        out.append(pattern)
        index += 1
    if "All" in out and len(out) > 1:
        raise RenderError(f"{usage}: All stands alone")
    return "Match " + " ".join(out)


def render(options, match=None):
    """The drop-in text. RenderError names the first bad keyword, value or Match block."""
    lines = [HEADER.rstrip("\n")]
    for name, value in _canonical_options(options or {}, "options", in_match=False):
        lines.extend(render_keyword(name, value))
    for index, block in enumerate(match or []):
        where = f"match[{index}]"
        if not isinstance(block, dict) or set(block) - {"criteria", "options"}:
            raise RenderError(f"{where} must be a dict with keys criteria and options")
        header = match_line(block.get("criteria"), where)
        body = _canonical_options(block.get("options") or {}, f"{where}.options", in_match=True)
        if not body:
            raise RenderError(f"{where}.options is empty")
        lines.append("")
        lines.append(header)
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
