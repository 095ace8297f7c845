"""Text that ends up in a configuration file: the checks every renderer shares (pure).

A control character in a value can start a new line (a new sudoers rule, a new jail option) or confuse
the program that reads the file, so values are refused when they hold one, by name.
"""

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# A plain absolute path: no blank, quote, glob or escape that a sudoers, logrotate or systemd file
# would read as something else.
_PLAIN_PATH = re.compile(r"(/[A-Za-z0-9._@+-]+)+")


def control_character(text, multiline=False):
    """The first control character of text (repr), or None. multiline allows line feeds and tabs."""
    found = (_CONTROL_BUT_LINES if multiline else _CONTROL).search(text)
    return repr(found.group()) if found else None


def plain_absolute_path(text):
    """Whether text is an absolute path of plain names (no '.' or '..' component, no trailing '/')."""
    if not isinstance(text, str) or not _PLAIN_PATH.fullmatch(text):
        return False
    return not any(part in (".", "..") for part in text.split("/"))
