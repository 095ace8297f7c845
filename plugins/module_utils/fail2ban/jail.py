"""fail2ban jails and filters: the model, its validation and the files that carry it.

Pure: the module reads the host (which filters exist, whether sshd logs only to the journal)
and passes what it found as a HostFacts; nothing here touches the host.

Each managed jail lives in its own file, ``jail.d/bulwark-<jail>.local``: a ``.local`` file in
``jail.d`` is read after ``jail.conf``, ``jail.d/*.conf`` (Debian's ``defaults-debian.conf``) and
``jail.local``, so its section wins; one file per jail lets the module reload exactly the jails
whose file changed and remove a jail by removing its file. Custom filters are written to
``filter.d/<name>.conf``. Every file written starts with MARKER, and only files that carry it are
ever replaced or removed.
"""

import re

from ansible_collections.bulwark.hardening.plugins.module_utils import text as text_checks

MARKER = "# Managed by bulwark.hardening (fail2ban_jail): edits here are replaced on the next run."

JAIL_PREFIX = "jail.d/bulwark-"
JAIL_SUFFIX = ".local"
# Jail files may carry credentials (an action's API key): root only, never world-readable.
FILE_MODE = 0o640

LOCALHOST_IGNORE = ["127.0.0.1/8", "::1"]

# Ban actions per firewall backend: (multiport, allports), the action files shipped by
# fail2ban 1.0 (Debian 12) and 1.1 (Debian 13).
BANACTIONS = {
    "nftables": ("nftables-multiport", "nftables-allports"),
    "iptables": ("iptables-multiport", "iptables-allports"),
    "ufw": ("ufw", "ufw"),
}

# With Docker, published ports are DNAT'ed to containers and never reach the input hook where the
# ban actions filter: a second action bans the source from forwarded traffic too (all containers).
# UFW has no equivalent, so it gets none.
DOCKER_ACTIONS = {
    "nftables": "nftables-allports[name={jail}-docker, chain=f2b-docker, chain_hook=forward, actname=docker]",
    "iptables": "iptables-allports[name={jail}-docker, chain=DOCKER-USER, actname=docker]",
}

# Jails that ban a source on every port (a repeat offender is not trusted anywhere).
ALLPORTS_JAILS = frozenset({"recidive"})

# sshd's messages in the journal: Debian's unit is ssh.service (sshd.service is an alias), and
# OpenSSH 9.8+ (Debian 13) logs authentication from sshd-session / sshd-auth, not from sshd.
SSHD_JOURNALMATCH = " + ".join(
    [
        "_SYSTEMD_UNIT=ssh.service",
        "_SYSTEMD_UNIT=sshd.service",
        "_COMM=sshd",
        "_COMM=sshd-session",
        "_COMM=sshd-auth",
    ]
)
# Filters whose log is sshd's: on a journal-only host their jails read the journal.
SSHD_FILTERS = frozenset({"sshd"})

BACKENDS = ("auto", "pyinotify", "polling", "systemd", "gamin")

_DURATION_OPTIONS = ("bantime", "findtime", "bantime.maxtime", "bantime.rndtime")
_COUNT_OPTIONS = ("maxretry", "maxmatches", "maxlines")
_BOOL_OPTIONS = ("enabled", "bantime.increment", "bantime.overalljails", "ignoreself")
_MULTILINE_OPTIONS = ("action", "failregex", "ignoreregex", "logpath")
_SPACE_LIST_OPTIONS = ("ignoreip",)
_COMMA_LIST_OPTIONS = ("port",)

# Jail options fail2ban 1.0/1.1 reads (jail.conf's [DEFAULT] and the jail reader).
JAIL_OPTIONS = frozenset(
    {
        "enabled",
        "mode",
        "filter",
        "logpath",
        "logencoding",
        "logtimezone",
        "backend",
        "journalmatch",
        "usedns",
        "port",
        "protocol",
        "chain",
        "action",
        "banaction",
        "banaction_allports",
        "bantime",
        "findtime",
        "maxretry",
        "maxmatches",
        "maxlines",
        "ignoreip",
        "ignoreself",
        "ignorecommand",
        "ignorecache",
        "datepattern",
        "failregex",
        "ignoreregex",
        "prefregex",
        "bantime.increment",
        "bantime.factor",
        "bantime.formula",
        "bantime.multipliers",
        "bantime.maxtime",
        "bantime.rndtime",
        "bantime.overalljails",
        "destemail",
        "sender",
        "mta",
        "allowipv6",
        "skip_if_nologs",
    }
)

# Options of a custom filter's [Definition] (and [Init] for journalmatch / maxlines).
FILTER_DEFINITION_OPTIONS = frozenset({"failregex", "ignoreregex", "prefregex", "datepattern"})
FILTER_INIT_OPTIONS = frozenset({"journalmatch", "maxlines"})
FILTER_OPTIONS = FILTER_DEFINITION_OPTIONS | FILTER_INIT_OPTIONS

# Matched with fullmatch: "sshd\n" is not sshd.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_RESERVED = frozenset({"default", "includes", "definition", "init"})
_DURATION_TOKEN = re.compile(
    r"(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|h|days?|d|weeks?|w|months?|mo|years?|y)?",
    re.IGNORECASE,
)
_UNIT_SECONDS = {
    "s": 1,
    "m": 60,
    "mi": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "mo": 2592000,
    "y": 31536000,
}


class JailError(ValueError):
    """Bad input: the message names the option."""


class HostFacts:
    """What the module found on the host.

    filters: names of the filters in filter.d (``<name>.conf`` or ``<name>.local``), owned ones included.
    journal_only: sshd logs only to the journal (no /var/log/auth.log, as on Debian 12 and 13).
    docker: Docker runs on the host (its published ports are forwarded, not delivered to input).
    """

    def __init__(self, filters=(), journal_only=True, docker=False):
        self.filters = frozenset(filters)
        self.journal_only = bool(journal_only)
        self.docker = bool(docker)


def duration_seconds(value, option):
    """Seconds in a fail2ban duration (600, "10m", "1h 30m", "1w"); negative or malformed is an error."""
    if isinstance(value, bool):
        raise JailError(f"{option}: expected a duration (seconds or '10m', '1h', '1d'), got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise JailError(f"{option}: must not be negative, got {value}")
        return value
    text = str(value).strip()
    if text.startswith("-"):
        raise JailError(f"{option}: must not be negative, got {text!r}")
    total = 0.0
    position = 0
    found = False
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        match = _DURATION_TOKEN.match(text, position)
        if not match or match.end() == position:
            raise JailError(f"{option}: expected a duration (seconds or '10m', '1h', '1d'), got {text!r}")
        unit = (match.group(2) or "s").lower()
        key = "mo" if unit.startswith("mo") else ("mi" if unit.startswith("mi") else unit[0])
        total += float(match.group(1)) * _UNIT_SECONDS[key]
        position = match.end()
        found = True
    if not found:
        raise JailError(f"{option}: expected a duration, got an empty value")
    return int(total) if total == int(total) else total


def _bool(value, option):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise JailError(f"{option}: expected a boolean, got {value!r}")


def _count(value, option):
    if isinstance(value, bool):
        raise JailError(f"{option}: expected a positive integer, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise JailError(f"{option}: expected a positive integer, got {value!r}") from None
    if number < 1:
        raise JailError(f"{option}: must be at least 1, got {number}")
    return number


# How fail2ban reads its files (Python's configparser as fail2ban sets it up): a ';' at the start of a value
# or after a blank starts a comment; a continuation line that starts with '#' or ';' is a comment line;
# an empty one is an empty line of the value; '%' interpolates ('%(name)s') and must otherwise be '%%'.
_INLINE_COMMENT = re.compile(r"(^|\s);")
_PERCENT = re.compile(r"%(?:%|\([A-Za-z0-9_./-]+\)s)|(%)")
_INTERPOLATION = re.compile(r"%\([A-Za-z0-9_./-]+\)s")

# Options whose value is data, not a command or a pattern: each reaches an action's shell command
# (iptables -I <chain> ... --dports <port>, sendmail ... <dest>) or names a file, so each must be the
# one word it claims to be. A value of another shape is refused by name, never quoted: fail2ban's
# action templates put it into the shell line unquoted.
_ACTION_PARAMS = r"(\[[A-Za-z0-9_.,:=/@ \"+*<>-]*\])?"
_WORD = r"[A-Za-z0-9_.-]+"
SHAPES = {
    # One element of the comma-separated list (a port, a service name or a range a:b).
    "port": (
        re.compile(r"[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)?"),
        "a port, a service name or a range such as 1000:2000",
    ),
    "protocol": (
        re.compile(r"[a-z0-9-]+(,[a-z0-9-]+)*"),
        "a protocol such as tcp, or a comma-separated list",
    ),
    "chain": (re.compile(r"[A-Za-z0-9_.-]{1,64}"), "a chain name (letters, digits, '_', '.', '-')"),
    "mta": (re.compile(_WORD), "an action name (letters, digits, '_', '.', '-')"),
    "destemail": (re.compile(r"[A-Za-z0-9._+-]+(@[A-Za-z0-9.-]+)?"), "an e-mail address"),
    "sender": (re.compile(r"[A-Za-z0-9._+-]+(@([A-Za-z0-9.-]+|<fq-hostname>))?"), "an e-mail address"),
    "banaction": (re.compile(_WORD + _ACTION_PARAMS), "an action name with optional [parameters]"),
    "banaction_allports": (re.compile(_WORD + _ACTION_PARAMS), "an action name with optional [parameters]"),
    "action": (
        re.compile(_WORD + _ACTION_PARAMS),
        "%(name)s or an action name with optional [parameters]"
        ' (letters, digits, blanks and _ . , : = / @ " + * < > -)',
    ),
    "filter": (re.compile(_WORD + _ACTION_PARAMS), "a filter name with optional [parameters]"),
    "backend": (re.compile(_WORD + _ACTION_PARAMS), "a backend with optional [parameters]"),
    "logpath": (
        re.compile(r"(/[^\s\"'\\;#%]*|%\([A-Za-z0-9_.-]+\)s)( (head|tail))?"),
        "an absolute path (globs allowed), or %(name)s, optionally followed by ' head' or ' tail'",
    ),
    "ignoreip": (re.compile(r"[^\s,;#\"'\\\x00-\x1f\x7f]+"), "one address, network or host name"),
    "usedns": (re.compile(r"yes|no|warn|raw"), "yes, no, warn or raw"),
    "mode": (re.compile(_WORD), "a mode name"),
    "logencoding": (re.compile(_WORD), "an encoding name such as utf-8 or auto"),
    "logtimezone": (re.compile(r"[A-Za-z0-9:+/_-]+"), "a time zone such as UTC or UTC+0200"),
    "allowipv6": (re.compile(r"auto|yes|no|true|false|on|off|0|1"), "auto, yes or no"),
    "skip_if_nologs": (re.compile(r"[A-Za-z0-9]+"), "true or false"),
    "bantime.multipliers": (re.compile(r"[0-9.]+( [0-9.]+)*"), "numbers separated by blanks"),
    # fail2ban evaluates the formula with Python's eval: arithmetic on ban.Time, ban.Count, banFactor
    # and math only (a '__' would reach Python's internals).
    "bantime.formula": (re.compile(r"(?!.*__)[A-Za-z0-9_.*/+() -]+"), "an arithmetic formula (no '__')"),
}


_INTERPOLATING_SHAPES = frozenset({"action", "banaction", "banaction_allports", "filter", "backend"})


def check_value(text, option, continuation=False):
    """One line of an option's value as fail2ban will read it back: JailError names option otherwise."""
    if "\n" in text or "\r" in text:
        raise JailError(f"{option}: line breaks are not allowed (give a list for several lines)")
    bad = text_checks.control_character(text)
    if bad:
        raise JailError(f"{option}: the control character {bad} is not allowed")
    if _INLINE_COMMENT.search(text):
        raise JailError(
            f"{option}: {text!r} has a ';' at its start or after a blank, where fail2ban's files start"
            " a comment"
        )
    if continuation and (not text or text[0] in "#;"):
        raise JailError(
            f"{option}: {text!r}: a line after the first may not be empty or start with '#' or ';' "
            "(fail2ban would read a blank or a comment line)"
        )
    if any(match.group(1) for match in _PERCENT.finditer(text)):
        raise JailError(
            f"{option}: {text!r} has a '%' that fail2ban would interpolate: write '%%' (or %(name)s)"
        )


def _shape(option, text, where):
    shape = SHAPES.get(option)
    if shape is None:
        return
    pattern, what = shape
    # %(name)s stands for another option's value (checked where that one is set): an action's parameters
    # often name them (port="%(port)s", a secret's %(token)s).
    text_shape = _INTERPOLATION.sub("x", text) if option in _INTERPOLATING_SHAPES else text
    parts = text_shape.split(",") if option == "port" else [text_shape]
    for part in parts:
        if not pattern.fullmatch(part.strip() if option == "port" else part):
            raise JailError(f"{where}: {text!r} is not {what}")


def _text(value, option, multiline=False, shape=None):
    """A scalar or (for multi-line options) a list of scalars, each line read back by fail2ban as given;
    `shape`: the option whose data shape (SHAPES) each item must have."""
    items = value if isinstance(value, list) else [value]
    if len(items) > 1 and not multiline:
        raise JailError(f"{option}: expected a single value, got a list")
    out = []
    for index, item in enumerate(items):
        if isinstance(item, (dict, list)) or item is None:
            raise JailError(f"{option}: expected text, got {item!r}")
        where = f"{option}[{index}]" if len(items) > 1 else option
        text = str(item).strip()
        check_value(text, where, continuation=index > 0)
        if shape:
            _shape(shape, text, where)
        out.append(text)
    return out


def validate_name(name, what):
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.lower() in _RESERVED:
        raise JailError(
            f"{what} name {name!r}: use letters, digits, '_', '.', '-' (at most 64), "
            "not a reserved section name"
        )
    return name


def normalise_options(name, options):
    """Validated options {option: bool, number or list of text}; errors name jails.<name>.<option>."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise JailError(f"jails.{name}: expected a dictionary of jail options")
    result = {}
    for option, value in options.items():
        where = f"jails.{name}.{option}"
        if option not in JAIL_OPTIONS:
            raise JailError(f"{where}: unknown jail option (known: {', '.join(sorted(JAIL_OPTIONS))})")
        if option in _BOOL_OPTIONS:
            result[option] = _bool(value, where)
        elif option in _DURATION_OPTIONS:
            duration_seconds(value, where)
            result[option] = _text(value, where)[0]
        elif option in _COUNT_OPTIONS:
            result[option] = _count(value, where)
        elif option == "bantime.factor":
            try:
                factor = float(str(value))
            except ValueError:
                raise JailError(f"{where}: expected a number, got {value!r}") from None
            if factor <= 0:
                raise JailError(f"{where}: must be greater than 0, got {value!r}")
            result[option] = _text(value, where)[0]
        elif option == "backend":
            backend = _text(value, where, shape=option)[0]
            if backend.split("[", 1)[0] not in BACKENDS:
                raise JailError(f"{where}: expected one of {', '.join(BACKENDS)}, got {backend!r}")
            result[option] = backend
        else:
            listable = option in _MULTILINE_OPTIONS + _SPACE_LIST_OPTIONS + _COMMA_LIST_OPTIONS
            result[option] = _text(value, where, multiline=listable, shape=option)
    return result


def normalise_filter(name, definition):
    validate_name(name, "filters:")
    if not isinstance(definition, dict):
        raise JailError(
            f"filters.{name}: expected a dictionary with failregex (and optionally ignoreregex, ...)"
        )
    result = {}
    for option, value in definition.items():
        where = f"filters.{name}.{option}"
        if option not in FILTER_OPTIONS:
            raise JailError(f"{where}: unknown filter option (known: {', '.join(sorted(FILTER_OPTIONS))})")
        if option == "maxlines":
            result[option] = _count(value, where)
        else:
            result[option] = _text(value, where, multiline=option in ("failregex", "ignoreregex"))
    if not result.get("failregex") or not any(result["failregex"]):
        raise JailError(f"filters.{name}.failregex: a filter needs at least one failregex")
    return result


# A secret's name becomes an option of its jail's section, for actions to use as %(name)s: it must not
# shadow a jail option or a name jail.conf's actions interpolate.
_SECRET_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_INTERPOLATED = frozenset({"name", "mta", "destemail", "sender", "fail2ban_agent", "known", "mode"})


def normalise_secrets(secrets, jail_names):
    """{jail: {name: value}} checked; JailError names secrets.<jail>.<name>, never a value."""
    if secrets is None:
        return {}
    if not isinstance(secrets, dict):
        raise JailError("secrets: expected a dictionary of jail name to {name: value}")
    result = {}
    for jail, values in secrets.items():
        if jail not in jail_names:
            raise JailError(f"secrets.{jail}: no jail of that name is declared in jails")
        if not isinstance(values, dict):
            raise JailError(f"secrets.{jail}: expected a dictionary of name to value")
        for name, value in values.items():
            where = f"secrets.{jail}.{name}"
            if not isinstance(name, str) or not _SECRET_NAME.fullmatch(name):
                raise JailError(f"secrets.{jail}: {str(name)!r} is not a name (lower case, digits, _)")
            if name in JAIL_OPTIONS or name in _INTERPOLATED or name.startswith("action_"):
                raise JailError(
                    f"{where}: the name is taken by a jail option or by jail.conf; choose another"
                )
            if not isinstance(value, str) or not value.strip() or value != value.strip():
                raise JailError(f"{where}: expected one line of text without surrounding blanks (not shown)")
            if text_checks.control_character(value):
                raise JailError(f"{where}: a control character is not allowed (the value is not shown)")
            if _INLINE_COMMENT.search(value):
                # fail2ban would cut the value there; '%' is escaped when rendered, ';' cannot be.
                raise JailError(
                    f"{where}: a ';' at the start or after a blank starts a comment in fail2ban's files"
                    " (the value is not shown)"
                )
            result.setdefault(jail, {})[name] = value
    return result


class Jail:
    """One declared jail after validation, with the host-dependent settings decided."""

    def __init__(self, name, options, secrets=None):
        self.name = name
        self.options = options
        self.secrets = secrets or {}  # {name: value}, rendered as options of the section

    @property
    def enabled(self):
        return self.options.get("enabled", True)

    @property
    def filter_name(self):
        value = self.options.get("filter")
        # "sshd[mode=aggressive]" names the filter sshd with an argument.
        return (value[0] if value else self.name).split("[", 1)[0].strip()

    @property
    def path(self):
        return jail_path(self.name)


def jail_path(name):
    return f"{JAIL_PREFIX}{name}{JAIL_SUFFIX}"


def filter_path(name):
    return f"filter.d/{name}.conf"


def jail_name_from_path(path):
    if path.startswith(JAIL_PREFIX) and path.endswith(JAIL_SUFFIX):
        return path[len(JAIL_PREFIX) : -len(JAIL_SUFFIX)]
    return None


def build(jails, filters, host, *, firewall_backend="nftables", admin_networks=(), ignoreip=(), secrets=None):
    """Validate the declared set and decide per-host settings: (list of Jail, {filter: normalised})."""
    if firewall_backend not in BANACTIONS:
        raise JailError(
            f"firewall_backend: expected one of {', '.join(BANACTIONS)}, got {firewall_backend!r}"
        )
    if not isinstance(jails, dict):
        raise JailError("jails: expected a dictionary of jail name to options")
    filters = filters or {}
    if not isinstance(filters, dict):
        raise JailError("filters: expected a dictionary of filter name to definition")
    custom = {name: normalise_filter(name, definition) for name, definition in sorted(filters.items())}
    never_ban = _ignore_list(admin_networks, ignoreip)
    multiport, allports = BANACTIONS[firewall_backend]
    built = []
    for name in sorted(jails):
        validate_name(name, "jails:")
    secrets = normalise_secrets(secrets, set(jails))
    for name in sorted(jails):
        options = normalise_options(name, jails[name])
        jail = Jail(name, options, secrets.get(name))
        if jail.enabled:
            available = host.filters | set(custom)
            if jail.filter_name not in available:
                where = f"jails.{name}.filter" if "filter" in options else f"jails.{name}"
                raise JailError(
                    f"{where}: filter {jail.filter_name!r} does not exist "
                    f"(neither filter.d/{jail.filter_name}.conf nor .local on the host, nor in filters)"
                )
            docker_action = DOCKER_ACTIONS.get(firewall_backend) if host.docker else None
            _decide(jail, host, multiport, allports, never_ban, docker_action=docker_action)
        built.append(jail)
    return built, custom


def filter_names(jails):
    """The filters the declared jails name (filter= or their own name): for a host not read yet."""
    names = set()
    for name, options in (jails or {}).items():
        value = options.get("filter") if isinstance(options, dict) else None
        names.add(value.split("[", 1)[0].strip() if isinstance(value, str) else name)
    return names


def validate(
    jails, filters=None, *, firewall_backend="nftables", admin_networks=(), ignoreip=(), secrets=None
):
    """Everything build() checks that does not need the host (which filters it has): JailError names it."""
    if not isinstance(jails, dict):
        raise JailError("jails: expected a dictionary of jail name to options")
    host = HostFacts(filters=filter_names(jails))
    build(
        jails,
        filters,
        host,
        firewall_backend=firewall_backend,
        admin_networks=admin_networks,
        ignoreip=ignoreip,
        secrets=secrets,
    )


def secret_names(jails):
    """The option names that hold secrets in the built jails: what a diff never shows."""
    return frozenset(name for jail in jails for name in jail.secrets)


def _ignore_list(admin_networks, extra):
    result = []
    for where, values in (("admin_networks", admin_networks), ("ignoreip", extra)):
        for value in values or ():
            text = str(value).strip()
            bad = text_checks.control_character(text) or "%" in text
            if bad or not SHAPES["ignoreip"][0].fullmatch(text):
                raise JailError(f"{where}: {value!r} is not a single address, network or host name")
            result.append(text)
    ordered = []
    for item in LOCALHOST_IGNORE + result:
        if item not in ordered:
            ordered.append(item)
    return ordered


def _decide(jail, host, multiport, allports, never_ban, *, docker_action=None):
    options = jail.options
    options.setdefault("enabled", True)
    # The operator's networks are never banned, whatever the jail also lists.
    listed = options.get("ignoreip", [])
    options["ignoreip"] = never_ban + [item for item in listed if item not in never_ban]
    if "banaction" not in options:
        options["banaction"] = [allports if jail.name in ALLPORTS_JAILS else multiport]
    options.setdefault("banaction_allports", [allports])
    # Debian 12+ logs sshd only to the journal: a file backend finds no log and fail2ban dies at start.
    if (
        jail.filter_name in SSHD_FILTERS
        and host.journal_only
        and "backend" not in options
        and "logpath" not in options
    ):
        options["backend"] = "systemd"
        options.setdefault("journalmatch", [SSHD_JOURNALMATCH])
    if jail.name in ALLPORTS_JAILS:
        options.setdefault("bantime.increment", True)
    if docker_action and "action" not in options:
        # The jail's usual action (banaction on its ports), then the same ban for containers.
        options["action"] = ["%(action_)s", docker_action.format(jail=jail.name)]


def _render_value(option, value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if option in _SPACE_LIST_OPTIONS:
        return " ".join(value)
    if option in _COMMA_LIST_OPTIONS:
        return ",".join(value)
    if isinstance(value, list):
        if len(value) == 1:
            return value[0]
        # Continuation lines are indented: fail2ban's reader joins them.
        return "\n".join([value[0]] + [f"    {line}" for line in value[1:]])
    return str(value)


def _section(name, options, order=None):
    lines = [f"[{name}]"]
    keys = list(order or []) + sorted(k for k in options if k not in (order or []))
    for key in keys:
        if key in options:
            lines.append(f"{key} = {_render_value(key, options[key])}")
    return lines


_JAIL_ORDER = ("enabled", "filter", "backend", "journalmatch", "logpath", "port")


def render_jail(jail):
    lines = [MARKER, f"# The [{jail.name}] jail; this file is read after jail.conf and jail.d/*.conf."]
    lines += _section(jail.name, jail.options, _JAIL_ORDER)
    if jail.secrets:
        lines.append("# Secrets, for the actions as %(name)s (this file is root-only):")
        # fail2ban interpolates %(...)s in values: a literal % is written %%.
        lines += [f"{name} = {value.replace('%', '%%')}" for name, value in sorted(jail.secrets.items())]
    return "\n".join(lines) + "\n"


def render_filter(name, definition):
    lines = [MARKER, f"# Custom filter {name!r}, used by jails with filter = {name}."]
    lines += _section("Definition", {k: v for k, v in definition.items() if k in FILTER_DEFINITION_OPTIONS})
    init = {k: v for k, v in definition.items() if k in FILTER_INIT_OPTIONS}
    if init:
        lines += ["", *_section("Init", init)]
    return "\n".join(lines) + "\n"


# Options whose bracketed parameters may hold credentials (an API token for a cloud firewall, a
# mail password): a diff shows the parameter names, never the values.
ACTION_OPTIONS = frozenset({"action", "banaction", "banaction_allports"})
_OPTION_LINE = re.compile(r"^([A-Za-z0-9_.]+)\s*=")
REDACTED = "<redacted>"


def _redact_params(line):
    """name[key=value, key2="v, w"] -> name[key=<redacted>, key2=<redacted>] (every bracket in the line)."""
    out, depth, quote, key_done = [], 0, None, False
    for char in line:
        if depth and quote:
            quote = None if char == quote else quote
            continue
        if char == "[":
            depth += 1
            key_done = False
            out.append(char)
        elif char == "]" and depth:
            depth -= 1
            out.append(char)
        elif depth and char == ",":
            key_done = False
            out.append(char)
        elif depth and char == "=" and not key_done:
            key_done = True
            out.append("=" + REDACTED)
        elif depth and key_done:
            if char in "\"'":
                quote = char
        else:
            out.append(char)
    return "".join(out)


def redact(content, secrets=frozenset()):
    """File text with every action parameter value, and the value of each option named in `secrets`,
    replaced: what a diff may show."""
    lines, in_action = [], False
    for line in (content or "").splitlines(keepends=True):
        match = _OPTION_LINE.match(line)
        if match and match.group(1) in secrets:
            lines.append(f"{match.group(1)} = {REDACTED}\n")
            in_action = False
            continue
        if match:
            in_action = match.group(1) in ACTION_OPTIONS
        elif line.strip() and not line[:1].isspace():
            in_action = False  # a section header or a comment ends the option
        lines.append(_redact_params(line) if in_action else line)
    return "".join(lines)


def desired_files(jails, custom_filters):
    """{relative path under /etc/fail2ban: content} for the declared set."""
    files = {jail.path: render_jail(jail) for jail in jails}
    for name, definition in custom_filters.items():
        files[filter_path(name)] = render_filter(name, definition)
    return files


def is_owned(content):
    return content.startswith(MARKER)
