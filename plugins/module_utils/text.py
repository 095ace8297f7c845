"""Text that ends up in a configuration file: the checks every renderer shares (pure).

A control character in a value can start a new line (a new sudoers rule, a new jail option) or confuse
the program that reads the file, so values are refused when they hold one, by name.
"""

import re

# C1 controls and Unicode's line and paragraph separators too: Python's str.splitlines() breaks lines
# there, so the collection's own parsers (of sshd -T, of a jail file for its diff) would see a line
# that the program reading the file does not.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# A plain absolute path: no blank, quote, glob or escape that a sudoers, logrotate or systemd file
# would read as something else.
_PLAIN_PATH = re.compile(r"(/[A-Za-z0-9._@+-]+)+")


def control_character(text, multiline=False):
    """The first control character of text (repr), or None. multiline allows line feeds and tabs."""
    found = (_CONTROL_BUT_LINES if multiline else _CONTROL).search(text)
    return repr(found.group()) if found else None


# Linux's PATH_MAX (with its NUL) and NAME_MAX.
PATH_MAX = 4095
NAME_MAX = 255


def plain_path(value, option):
    """value as a plain absolute path (one trailing '/' dropped), or ValueError naming option.

    The one path check of the collection: a value that passes is a single token in a shell line
    (even unquoted), a systemd unit, a sudoers, logrotate or jail file, an nft or restore script:
    absolute; names of [A-Za-z0-9._@+-] only (no blank, quote, '$', backtick, ';', glob, '%' specifier,
    ':' separator or '\\'); no '.', '..' or empty component ('//'); no control character; bounded.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{option}: {value!r} is not a path (a non-empty string). Nothing was applied")
    if len(value) > PATH_MAX:
        raise ValueError(f"{option}: is longer than {PATH_MAX} characters. Nothing was applied")
    bad = control_character(value)
    if bad:
        raise ValueError(f"{option}: contains a control character ({bad}). Nothing was applied")
    path = value[:-1] if len(value) > 1 and value.endswith("/") else value
    if not path.startswith("/"):
        raise ValueError(f"{option}: {value!r} is not an absolute path. Nothing was applied")
    if path != "/":
        for part in path[1:].split("/"):
            if part in ("", ".", ".."):
                raise ValueError(
                    f"{option}: {value!r} has an empty, '.' or '..' component; write the plain path. "
                    "Nothing was applied"
                )
            if len(part) > NAME_MAX:
                raise ValueError(
                    f"{option}: a name in {value!r} is longer than {NAME_MAX} characters. Nothing was applied"
                )
        if not _PLAIN_PATH.fullmatch(path):
            odd = sorted({c for c in path if not (c.isascii() and (c.isalnum() or c in "._@+-/"))})
            raise ValueError(
                f"{option}: {value!r} holds {' '.join(repr(c) for c in odd)}: a path here is made of "
                "letters, digits and . _ @ + - only. Nothing was applied"
            )
    return path


def plain_absolute_path(text):
    """Whether text is an absolute path of plain names (no '.' or '..' component, no trailing '/')."""
    try:
        return plain_path(text, "path") == text and text != "/"
    except ValueError:
        return False
