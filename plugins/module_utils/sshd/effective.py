"""Parse `sshd -T` (the effective configuration, Match blocks evaluated for one connection).

sshd -T prints one `keyword value` line per setting, keywords in lower case. Some keywords come
back on several lines (hostkey, port, listenaddress, acceptenv, subsystem, allowusers, ...): every
keyword keeps the list of its lines, and `as_dict` flattens single lines to strings.
"""

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
