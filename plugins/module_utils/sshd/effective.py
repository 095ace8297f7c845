"""Parse `sshd -T` (the effective configuration, Match blocks evaluated for one connection).

sshd -T prints one `keyword value` line per setting, keywords in lower case. Some keywords come
back on several lines (hostkey, port, listenaddress, acceptenv, subsystem, allowusers, ...): every
keyword keeps the list of its lines, and `as_dict` flattens single lines to strings.

It also reads the configuration files themselves for what `sshd -T` does not show: their Include
directives and their Match blocks (the audit asks sshd about a connection that each block selects).
"""

import collections
import shlex

from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.keywords import ALIASES

MULTI = frozenset(
    {
        "acceptenv",
        "allowgroups",
        "allowusers",
        "denygroups",
        "denyusers",
        "hostcertificate",
        "hostkey",
        "listenaddress",
        "port",
        "subsystem",
    }
)


class Effective:
    def __init__(self, values):
        self.values = values  # keyword (lower case) -> list of values (one per line)

    def get(self, key, default=None):
        lines = self.values.get(key.lower())
        return lines[0] if lines else default

    def lines(self, key):
        return list(self.values.get(key.lower(), []))

    def words(self, key):
        """All whitespace-separated words of a keyword's lines (allowusers a b + allowusers c -> a, b, c)."""
        return [word for line in self.lines(key) for word in line.split()]

    def csv(self, key):
        """A comma-separated list (ciphers, kexalgorithms, ...)."""
        value = self.get(key)
        if not value or value == "none":
            return []
        return [item for item in value.split(",") if item]

    def flag(self, key):
        return self.get(key, "no").lower() == "yes"

    def as_dict(self):
        flat = {}
        for key, vals in self.values.items():
            flat[key] = list(vals) if key in MULTI or len(vals) > 1 else vals[0]
        return flat


def parse(text):
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _unused, value = line.partition(" ")
        values.setdefault(key.lower(), []).append(value.strip())
    return Effective(values)


# --- sshd_config files: the Include and Match directives `sshd -T` leaves out ------------------------

# A Match block as written: where it is, its criteria [(name in lower case, pattern list)] in order
# ("all" has an empty pattern list), and the settings it makes {keyword in lower case: first value}.
MatchBlock = collections.namedtuple("MatchBlock", "path line criteria settings")

# Old keyword names sshd still reads, as `sshd -T` prints them.
_ALIASES = {old: new.lower() for old, new in ALIASES.items()}


def _words(line):
    """A directive's words as sshd splits them: whitespace, double quotes, `Keyword=value`; `#` ends it."""
    try:
        words = shlex.split(line, comments=True, posix=True)
    except ValueError:
        words = line.split()  # an unbalanced quote: `sshd -t` refuses the file, the audit says so elsewhere
    if words and "=" in words[0]:
        key, _sep, rest = words[0].partition("=")
        words = [key, *([rest] if rest else []), *words[1:]]
    if len(words) > 1 and words[1] == "=":
        del words[1]
    elif len(words) > 1 and words[1].startswith("="):
        words[1] = words[1][1:]
    return words


def directives(text):
    """[(line number, keyword in lower case, [arguments])] of an sshd_config file, comments left out."""
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = _words(line)
        if words:
            keyword = words[0].lower()
            found.append((number, _ALIASES.get(keyword, keyword), words[1:]))
    return found


def includes(text):
    """The Include patterns of a file, in order (a relative one is relative to /etc/ssh, as sshd reads it)."""
    return [pattern for _line, keyword, args in directives(text) if keyword == "include" for pattern in args]


def match_criteria(args):
    """A Match line's arguments -> [(criterion in lower case, pattern list)]; `Criterion=value` is read too.

    ValueError when a criterion has no pattern list (sshd -t refuses that line).
    """
    criteria, words = [], list(args)
    while words:
        word = words.pop(0)
        name, sep, value = word.partition("=")
        name = name.lower()
        if name == "all":
            criteria.append(("all", ""))
            continue
        if not sep:
            if not words:
                raise ValueError(f"Match {name} has no pattern list")
            value = words.pop(0)
        criteria.append((name, value))
    return criteria


def match_blocks(text, path):
    """[MatchBlock] of one file. A block ends at the next Match or at the end of its file, as in sshd
    (an Include'd file's block does not reach back into the file that includes it)."""
    blocks = []
    for number, keyword, args in directives(text):
        if keyword == "match":
            try:
                criteria = match_criteria(args)
            except ValueError:
                criteria = [("unreadable", " ".join(args))]
            blocks.append(MatchBlock(path, number, criteria, {}))
        elif blocks and args:
            blocks[-1].settings.setdefault(keyword, " ".join(args))  # sshd keeps a keyword's first value
    return blocks


# How the Match criteria are spelled in sshd_config(5).
CRITERIA = {
    "all": "All", "user": "User", "group": "Group", "host": "Host", "address": "Address",
    "localaddress": "LocalAddress", "localport": "LocalPort", "rdomain": "RDomain",
}  # fmt: skip


def describe_block(block):
    """`Match User root at /etc/ssh/sshd_config line 130`: how a finding names a block."""
    words = []
    for name, value in block.criteria:
        words += [CRITERIA.get(name, name)] + ([value] if value else [])
    return f"Match {' '.join(words)} at {block.path} line {block.line}"
