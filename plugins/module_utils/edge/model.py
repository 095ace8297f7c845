"""The edge's input: validated and normalised on the controller and on the host (pure).

`build(options)` takes the module's options (the role's `edge_*` variables without the prefix) and returns
a `Config`, or raises `EdgeError` naming the option and its index ("sites[1].server_names[0]: 'a b' is not
a DNS name. Nothing was applied"). The role passes `edge_sites` as `sites`, so `validate_input` prefixes
the role's variable names (`prefix="edge_"`).

Every value that reaches nginx's configuration is one of: a name from a closed alphabet (server names, site
names, header names, paths, rates, sizes), an integer, an address that `ipaddress` parsed, or a header
value, which is the only free text: printable ASCII without '$' (nginx would expand a variable) or '\\'
(nginx's escape), rendered between double quotes with '"' escaped. Nothing accepted here can end a
directive, open or close a block, start a comment or expand a variable.
"""

import ipaddress
import re
from dataclasses import asdict, dataclass, field

from ansible_collections.bulwark.hardening.plugins.module_utils import text as text_checks
from ansible_collections.bulwark.hardening.plugins.module_utils.edge import profiles


class EdgeError(ValueError):
    """Input the edge refuses; the message names the option (and index)."""


def _fail(option, message):
    raise EdgeError(f"{option}: {message}. Nothing was applied")


# The one place the defaults live: the role's argument spec and DOCUMENTATION are derived from it.
DEFAULTS = {
    "profile": profiles.DEFAULT,
    "hsts": {"max_age": None, "include_subdomains": True, "preload": False},  # None: the profile's
    "headers": {
        "Content-Security-Policy": (
            "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "camera=(), geolocation=(), microphone=(), payment=(), usb=()",
    },
    "rate_limit": {"rate": "20r/s", "burst": 40, "nodelay": True, "zone_size": "10m"},
    "login_rate_limit": {"rate": "10r/m", "burst": 5, "nodelay": True, "zone_size": "10m"},
    "limit_conn": 50,
    "limit_conn_zone_size": "10m",
    "client_max_body_size": "1m",
    "timeouts": {
        "client_header": 10,
        "client_body": 10,
        "send": 10,
        "keepalive": 15,
        "proxy_connect": 5,
        "proxy_send": 60,
        "proxy_read": 60,
    },
    "headers_remove": [],
    "resolvers": [],
    "upstream_networks": [],
    "certificates": [],
    "sites": [],
}
TIMEOUT_MAX = 3600
# Private networks an upstream may live on: loopback, RFC 1918 (Docker's networks among them), shared
# address space (RFC 6598, where overlays such as a WireGuard mesh often live), IPv6 unique local.
# upstream_networks adds the overlay's network when it is elsewhere.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
    )
)
CERTIFICATE_SOURCES = ("acme", "internal", "imported")
KNOWN_HEADERS = {
    name.lower(): name
    for name in (
        "Content-Security-Policy",
        "Content-Security-Policy-Report-Only",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Permissions-Policy",
        "Cross-Origin-Opener-Policy",
        "Cross-Origin-Embedder-Policy",
        "Cross-Origin-Resource-Policy",
    )
}
# Deprecated or harmful (X-XSS-Protection can create cross-site leaks; Feature-Policy, Expect-CT and HPKP are
# gone from browsers) or owned elsewhere (HSTS by the hsts option, Server by server_tokens).
REFUSED_HEADERS = {
    "x-xss-protection": "is deprecated (browsers removed the XSS auditor; the header can do harm)",
    "feature-policy": "is deprecated: use Permissions-Policy",
    "expect-ct": "is deprecated",
    "public-key-pins": "is deprecated",
    "public-key-pins-report-only": "is deprecated",
    "strict-transport-security": "is set by the hsts option",
    "server": "is not sent (server_tokens off)",
}

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_SITE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_CERT_NAME = _SITE_NAME
_HEADER_NAME = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
# A header value: printable ASCII; no '$' (an nginx variable) and no '\\' (nginx's escape).
_HEADER_VALUE = re.compile(r"[\x20-\x23\x25-\x5b\x5d-\x7e]+")
_SEGMENT = r"[A-Za-z0-9._~!*+,=:@-]+"
_PATH = re.compile(rf"/(?:{_SEGMENT}(?:/{_SEGMENT})*/?)?")
_RATE = re.compile(r"([1-9][0-9]{0,5})r/([sm])")
_SIZE = re.compile(r"([1-9][0-9]{0,6})([km]?)")
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}
ZONE_MIN, ZONE_MAX = 64 * 1024, 1024 * 1024 * 1024  # nginx refuses a zone under 8 pages
BODY_MAX = 1024 * 1024 * 1024
LIMIT_MAX = 100000
MAX_NAMES = 100
HSTS_MAX = 2**31 - 1
HSTS_PRELOAD_MIN = 31536000  # hstspreload.org's minimum (one year)


@dataclass(frozen=True)
class RateLimit:
    rate: str  # "10r/s"
    burst: int
    nodelay: bool
    zone_size: str  # "10m"


@dataclass(frozen=True)
class Upstream:
    scheme: str  # http, https or unix
    host: str = ""  # an address (no brackets) or a name
    port: int = 0
    socket: str = ""

    @property
    def url(self):
        """What proxy_pass takes: no URI part, so the request's URI is passed on unchanged."""
        if self.scheme == "unix":
            return f"http://unix:{self.socket}:"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class Hsts:
    max_age: int
    include_subdomains: bool
    preload: bool

    @property
    def value(self):
        parts = [f"max-age={self.max_age}"]
        if self.include_subdomains:
            parts.append("includeSubDomains")
        if self.preload:
            parts.append("preload")
        return "; ".join(parts)


@dataclass(frozen=True)
class Location:
    path: str
    upstream: Upstream
    login: bool
    rate_limit: RateLimit
    headers: tuple  # ((name, value), ...) in render order
    client_max_body_size: str


@dataclass(frozen=True)
class Site:
    name: str
    server_names: tuple
    certificate: str
    locations: tuple
    headers: tuple
    hsts: Hsts
    limit_conn: int
    client_max_body_size: str


@dataclass(frozen=True)
class Certificate:
    name: str
    source: str
    names: tuple  # the server names it must cover (from the sites that use it)
    certificate_file: str = ""  # imported: where the operator put them on the host
    key_file: str = ""


@dataclass(frozen=True)
class Config:
    profile: profiles.Profile
    sites: tuple
    certificates: tuple
    resolvers: tuple
    timeouts: tuple  # ((name, seconds), ...) in DEFAULTS' order
    limit_conn_zone_size: str
    client_max_body_size: str
    upstream_networks: tuple = field(default=())


# --- small checks --------------------------------------------------------------------------------------


def _dict(value, option, allowed):
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(option, f"{value!r} is not a mapping")
    for key in value:
        if key not in allowed:
            _fail(f"{option}.{key}", f"is not an option here (known: {', '.join(sorted(allowed))})")
    return value


def _list(value, option):
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        _fail(option, f"{value!r} is not a list")
    return list(value)


def _bool(value, option):
    if not isinstance(value, bool):
        _fail(option, f"{value!r} is not a boolean (true or false)")
    return value


def _int(value, option, low, high):
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        value = int(value)  # bounded: int() refuses a string of thousands of digits with its own error
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(option, f"{value!r} is not an integer")
    if not low <= value <= high:
        _fail(option, f"{value} is not between {low} and {high}")
    return value


def _text(value, option):
    if not isinstance(value, str) or not value:
        _fail(option, f"{value!r} is not a non-empty string")
    bad = text_checks.control_character(value)
    if bad:
        _fail(option, f"contains a control character ({bad})")
    return value


def dns_name(value, option, wildcard=False):
    """value as a lower-case DNS name (RFC 1123 host names, A-labels for IDNs); with wildcard, also one
    leading '*.' label as RFC 6125 allows it (the whole left-most label, with two labels after it)."""
    value = _text(value, option)
    name = value.lower()
    if not value.isascii():  # before lower(): 'K' (U+212A) lower-cases to an ASCII 'k'.
        _fail(option, f"{value!r} is not a DNS name (write an internationalised name as its xn-- A-label)")
    rest = name[2:] if wildcard and name.startswith("*.") else name
    if len(name) > 253 or not _DNS_NAME.fullmatch(rest):
        _fail(option, f"{value!r} is not a DNS name" + (" or a wildcard *.name" if wildcard else ""))
    labels = rest.split(".")
    if labels[-1].isdigit():
        _fail(option, f"{value!r} is not a DNS name (its last label is a number)")
    if rest is not name and len(labels) < 2:
        _fail(option, f"{value!r}: a wildcard needs at least two labels after '*.'")
    return name


def _size(value, option, low, high):
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        _fail(option, f"{value!r} is not a size (a number with an optional k or m)")
    size = int(match.group(1)) * SIZE_UNITS[match.group(2)]
    if not low <= size <= high:
        _fail(option, f"{value!r} is not between {low} and {high} bytes")
    return value


def _rate_limit(value, option, base):
    given = _dict(value, option, ("rate", "burst", "nodelay", "zone_size"))
    merged = {**base, **{k: v for k, v in given.items() if v is not None}}
    rate = merged["rate"]
    if not isinstance(rate, str) or not _RATE.fullmatch(rate):
        _fail(f"{option}.rate", f"{rate!r} is not a rate (requests per second or minute: 10r/s, 30r/m)")
    return RateLimit(
        rate=rate,
        burst=_int(merged["burst"], f"{option}.burst", 0, LIMIT_MAX),
        nodelay=_bool(merged["nodelay"], f"{option}.nodelay"),
        zone_size=_size(merged["zone_size"], f"{option}.zone_size", ZONE_MIN, ZONE_MAX),
    )


def _hsts(value, option, base):
    given = _dict(value, option, ("max_age", "include_subdomains", "preload"))
    merged = {**base, **{k: v for k, v in given.items() if v is not None}}
    hsts = Hsts(
        max_age=_int(merged["max_age"], f"{option}.max_age", 0, HSTS_MAX),
        include_subdomains=_bool(merged["include_subdomains"], f"{option}.include_subdomains"),
        preload=_bool(merged["preload"], f"{option}.preload"),
    )
    if hsts.preload and not hsts.include_subdomains:
        _fail(f"{option}.preload", "preload requires include_subdomains")
    if hsts.preload and hsts.max_age < HSTS_PRELOAD_MIN:
        _fail(f"{option}.preload", f"preload requires max_age >= {HSTS_PRELOAD_MIN} (one year)")
    return hsts


def header_name(value, option):
    value = _text(value, option)
    if not _HEADER_NAME.fullmatch(value) or len(value) > 64:
        _fail(option, f"{value!r} is not a header name (letters, digits and inner '-')")
    lower = value.lower()
    if lower in REFUSED_HEADERS:
        _fail(option, f"{value} {REFUSED_HEADERS[lower]}")
    return KNOWN_HEADERS.get(lower, value)


def header_value(value, option):
    value = _text(value, option)
    if len(value) > 4096:
        _fail(option, "is longer than 4096 characters")
    if value != value.strip(" "):
        _fail(option, "has leading or trailing blanks")
    if not _HEADER_VALUE.fullmatch(value):
        odd = sorted({c for c in value if not _HEADER_VALUE.fullmatch(c)})
        _fail(
            option,
            f"holds {' '.join(repr(c) for c in odd)}: a header value here is printable ASCII without '$' "
            "(nginx would read a variable) or '\\'",
        )
    return value


def _headers(value, remove, option, remove_option, base):
    """base (a dict in order) with value's headers set (in the place of one of the same name, whatever its
    case) and remove's names dropped."""
    headers = dict(base)
    if value is not None and not isinstance(value, dict):
        _fail(option, f"{value!r} is not a mapping of header names to values")
    for name, given in (value or {}).items():
        where = f"{option}.{name}" if isinstance(name, str) and _HEADER_NAME.fullmatch(name) else option
        canonical = header_name(name, where)
        text = header_value(given, where)
        same = next((k for k in headers if k.lower() == canonical.lower()), None)
        if same is None:
            headers[canonical] = text
        else:
            headers = {
                (canonical if k == same else k): (text if k == same else v) for k, v in headers.items()
            }
    for index, name in enumerate(_list(remove, remove_option)):
        where = f"{remove_option}[{index}]"
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            _fail(where, f"{name!r} is not a header name")
        lower = name.lower()
        if not any(k.lower() == lower for k in headers):
            _fail(where, f"{name} is not a header that would be sent here")
        headers = {k: v for k, v in headers.items() if k.lower() != lower}
    return headers


def address(value, option):
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        _fail(option, f"{value!r} is not an IP address")


def _private(ip, networks):
    return any(ip.version == net.version and ip in net for net in networks)


def upstream(value, option, networks=PRIVATE_NETWORKS):
    """http(s)://host[:port] (an address on a private network, or a name) or unix:/path/to/socket."""
    value = _text(value, option)
    if value.startswith("unix:"):
        try:
            path = text_checks.plain_path(value[5:], option)
        except ValueError as exc:
            raise EdgeError(str(exc)) from None
        return Upstream(scheme="unix", socket=path)
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https"):
        _fail(option, f"{value!r} is not an upstream (http://host:port, https://host:port or unix:/path)")
    if rest.endswith("/"):
        rest = rest[:-1]
    if "/" in rest or "?" in rest or "#" in rest or "@" in rest:
        _fail(option, f"{value!r}: an upstream is a scheme, a host and a port, with no path or user")
    if rest.startswith("["):
        host, bracket, port_text = rest[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            _fail(option, f"{value!r} is not an upstream (an IPv6 address goes in brackets: [fd00::1]:8080)")
        port_text = port_text[1:]
        if "%" in host:
            _fail(option, f"{value!r}: an IPv6 scope (%...) is not allowed")
        ip = address(host, option)
        if ip.version != 6:
            _fail(option, f"{value!r}: only an IPv6 address goes in brackets")
    else:
        host, colon, port_text = rest.partition(":")
        if colon and not port_text:
            _fail(option, f"{value!r}: an empty port")
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            ip = None
    port = _int(port_text, f"{option} (port)", 1, 65535) if port_text else (443 if scheme == "https" else 80)
    if ip is not None:
        if not _private(ip, networks):
            _fail(
                option,
                f"{ip} is not on a loopback, private, overlay or Docker network (add the network to "
                "upstream_networks if it is the overlay's)",
            )
        return Upstream(scheme=scheme, host=str(ip), port=port)
    if host and host[0].isdigit() and host.replace(".", "").isdigit():
        _fail(option, f"{value!r} is not an upstream (not an IPv4 address, not a name)")
    return Upstream(scheme=scheme, host=dns_name(host, option), port=port)


def location_path(value, option):
    value = _text(value, option)
    if len(value) > 1024 or not _PATH.fullmatch(value):
        _fail(
            option,
            f"{value!r} is not a location path ('/' and segments of letters, digits and . _ ~ ! * + , = : @ -"
            ")",
        )
    if any(part in (".", "..") for part in value.split("/")):
        _fail(option, f"{value!r} has a '.' or '..' segment")
    return value


# --- the whole input -----------------------------------------------------------------------------------

_SITE_KEYS = (
    "name", "server_names", "upstream", "certificate", "locations", "headers", "headers_remove", "hsts",
    "rate_limit", "limit_conn", "client_max_body_size",
)  # fmt: skip
_LOCATION_KEYS = (
    "path",
    "upstream",
    "login",
    "rate_limit",
    "headers",
    "headers_remove",
    "client_max_body_size",
)
_CERT_KEYS = ("name", "source", "certificate_file", "key_file")
OPTIONS = tuple(DEFAULTS)


def _location(raw, option, site, networks):
    """site: the site's values a location inherits (upstream, rate_limit, login_rate_limit, headers, body)."""
    raw = _dict(raw, option, _LOCATION_KEYS)
    site_upstream = site["upstream"]
    path = location_path(raw.get("path"), f"{option}.path")
    login = _bool(raw.get("login", False), f"{option}.login")
    if raw.get("upstream") is not None:
        target = upstream(raw["upstream"], f"{option}.upstream", networks)
    elif site_upstream is None:
        _fail(f"{option}.upstream", "is required where the site has no upstream")
    else:
        target = site_upstream
    base_rate = site["login_rate_limit"] if login else site["rate_limit"]
    rate = _rate_limit(raw.get("rate_limit"), f"{option}.rate_limit", asdict(base_rate))
    headers = _headers(
        raw.get("headers"),
        raw.get("headers_remove"),
        f"{option}.headers",
        f"{option}.headers_remove",
        site["headers"],
    )
    body = raw.get("client_max_body_size")
    body = site["body"] if body is None else _size(body, f"{option}.client_max_body_size", 1, BODY_MAX)
    return Location(path, target, login, rate, tuple(headers.items()), body)


def _server_names(value, option):
    names = _list(value, option)
    if not names:
        _fail(option, "is empty: a site answers for at least one name")
    if len(names) > MAX_NAMES:
        _fail(option, f"has more than {MAX_NAMES} names (a certificate's limit at Let's Encrypt)")
    server_names = []
    for index, item in enumerate(names):
        server_name = dns_name(item, f"{option}[{index}]", wildcard=True)
        if server_name in server_names:
            _fail(f"{option}[{index}]", f"{server_name} is listed twice")
        server_names.append(server_name)
    return server_names


def _locations(value, option, inherited, networks):
    locations, paths = [], set()
    for index, item in enumerate(_list(value, option) or [{"path": "/"}]):
        where = f"{option}[{index}]"
        location = _location(item, where, inherited, networks)
        if location.path in paths:
            _fail(f"{where}.path", f"{location.path} is listed twice")
        paths.add(location.path)
        locations.append(location)
    return locations


def _site(raw, option, defaults, networks):
    raw = _dict(raw, option, _SITE_KEYS)
    name = raw.get("name")
    if not isinstance(name, str) or not _SITE_NAME.fullmatch(name):
        _fail(f"{option}.name", f"{name!r} is not a site name ([a-z0-9][a-z0-9-], at most 40)")
    server_names = _server_names(raw.get("server_names"), f"{option}.server_names")
    site_upstream = raw.get("upstream")
    if site_upstream is not None:
        site_upstream = upstream(site_upstream, f"{option}.upstream", networks)
    site_rate = _rate_limit(raw.get("rate_limit"), f"{option}.rate_limit", asdict(defaults["rate_limit"]))
    headers = _headers(
        raw.get("headers"), raw.get("headers_remove"), f"{option}.headers", f"{option}.headers_remove",
        defaults["headers"],
    )  # fmt: skip
    hsts = _hsts(raw.get("hsts"), f"{option}.hsts", asdict(defaults["hsts"]))
    limit_conn = raw.get("limit_conn")
    limit_conn = (
        defaults["limit_conn"]
        if limit_conn is None
        else _int(limit_conn, f"{option}.limit_conn", 1, LIMIT_MAX)
    )
    body = raw.get("client_max_body_size")
    body = defaults["body"] if body is None else _size(body, f"{option}.client_max_body_size", 1, BODY_MAX)
    inherited = {
        "upstream": site_upstream,
        "rate_limit": site_rate,
        "login_rate_limit": defaults["login_rate_limit"],
        "headers": headers,
        "body": body,
    }
    locations = _locations(raw.get("locations"), f"{option}.locations", inherited, networks)
    certificate = raw.get("certificate", name)
    if not isinstance(certificate, str) or not _CERT_NAME.fullmatch(certificate):
        _fail(f"{option}.certificate", f"{certificate!r} is not a certificate name")
    return Site(
        name,
        tuple(server_names),
        certificate,
        tuple(locations),
        tuple(headers.items()),
        hsts,
        limit_conn,
        body,
    )


def _certificates(raw, prefix, sites):
    by_name = {}
    for index, raw_item in enumerate(_list(raw, f"{prefix}certificates")):
        option = f"{prefix}certificates[{index}]"
        item = _dict(raw_item, option, _CERT_KEYS)
        name = item.get("name")
        if not isinstance(name, str) or not _CERT_NAME.fullmatch(name):
            _fail(f"{option}.name", f"{name!r} is not a certificate name ([a-z0-9][a-z0-9-], at most 40)")
        if name in by_name:
            _fail(f"{option}.name", f"{name} is listed twice")
        source = item.get("source", "acme")
        if source not in CERTIFICATE_SOURCES:
            _fail(f"{option}.source", f"{source!r} is not one of {', '.join(CERTIFICATE_SOURCES)}")
        files = {}
        for key in ("certificate_file", "key_file"):
            if source == "imported":
                try:
                    files[key] = text_checks.plain_path(item.get(key), f"{option}.{key}")
                except ValueError as exc:
                    raise EdgeError(str(exc)) from None
            elif item.get(key) is not None:
                _fail(f"{option}.{key}", f"is only for an imported certificate, not {source}")
        by_name[name] = (option, source, files)
    certificates, used = [], {}
    for index, site in enumerate(sites):
        if site.certificate not in by_name:
            _fail(
                f"{prefix}sites[{index}].certificate",
                f"{site.certificate!r} is not among {prefix}certificates' names",
            )
        used.setdefault(site.certificate, []).extend(site.server_names)
    for name, (option, source, files) in by_name.items():
        names = tuple(dict.fromkeys(used.get(name, ())))
        wildcard = next((n for n in names if n.startswith("*.")), None)
        if source == "acme" and wildcard:
            _fail(
                f"{option}.source", f"{wildcard} is a wildcard, which ACME's HTTP-01 challenge cannot prove"
            )
        certificates.append(Certificate(name, source, names, **files))
    return tuple(certificates)


def _networks(value, option):
    """The private networks and the operator's own (an overlay outside them), where upstreams may be."""
    networks = list(PRIVATE_NETWORKS)
    for index, item in enumerate(_list(value, option)):
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except (TypeError, ValueError):
            _fail(f"{option}[{index}]", f"{item!r} is not a network (host bits zero)")
    return networks


def _sites(value, option, defaults, networks):
    sites, seen = [], {}
    for index, raw in enumerate(_list(value, option)):
        site = _site(raw, f"{option}[{index}]", defaults, networks)
        for position, server_name in enumerate(site.server_names):
            if server_name in seen:
                _fail(
                    f"{option}[{index}].server_names[{position}]",
                    f"{server_name} is already a name of {option}[{seen[server_name]}]",
                )
            seen[server_name] = index
        if any(s.name == site.name for s in sites):
            _fail(f"{option}[{index}].name", f"{site.name} is listed twice")
        sites.append(site)
    return sites


def build(options, prefix=""):
    """A Config from the module's options (prefix names the options in errors: "edge_" on the controller)."""
    if not isinstance(options, dict):
        _fail(f"{prefix}options", f"{options!r} is not a mapping")
    for key in options:
        if key not in OPTIONS:
            _fail(f"{prefix}{key}", f"is not an option of the edge (known: {', '.join(OPTIONS)})")
    get = {key: (DEFAULTS[key] if options.get(key) is None else options[key]) for key in OPTIONS}
    name = get["profile"]
    if name not in profiles.PROFILES:
        _fail(f"{prefix}profile", f"{name!r} is not a TLS profile ({', '.join(profiles.PROFILES)})")
    profile = profiles.PROFILES[name]
    networks = _networks(get["upstream_networks"], f"{prefix}upstream_networks")
    base_hsts = {**DEFAULTS["hsts"], "max_age": profile.hsts_min_age}
    hsts = _hsts(get["hsts"], f"{prefix}hsts", base_hsts)
    headers = _headers(
        options.get("headers"), options.get("headers_remove"), f"{prefix}headers", f"{prefix}headers_remove",
        DEFAULTS["headers"],
    )  # fmt: skip
    timeouts_raw = _dict(get["timeouts"], f"{prefix}timeouts", tuple(DEFAULTS["timeouts"]))
    timeouts = tuple(
        (key, _int(timeouts_raw.get(key, default), f"{prefix}timeouts.{key}", 1, TIMEOUT_MAX))
        for key, default in DEFAULTS["timeouts"].items()
    )
    defaults = {
        "rate_limit": _rate_limit(get["rate_limit"], f"{prefix}rate_limit", DEFAULTS["rate_limit"]),
        "login_rate_limit": _rate_limit(
            get["login_rate_limit"], f"{prefix}login_rate_limit", DEFAULTS["login_rate_limit"]
        ),
        "headers": headers,
        "hsts": hsts,
        "limit_conn": _int(get["limit_conn"], f"{prefix}limit_conn", 1, LIMIT_MAX),
        "body": _size(get["client_max_body_size"], f"{prefix}client_max_body_size", 1, BODY_MAX),
    }
    sites = _sites(get["sites"], f"{prefix}sites", defaults, networks)
    resolvers = tuple(
        str(address(value, f"{prefix}resolvers[{index}]"))
        for index, value in enumerate(_list(get["resolvers"], f"{prefix}resolvers"))
    )
    return Config(
        profile=profile,
        sites=tuple(sites),
        certificates=_certificates(get["certificates"], prefix, sites),
        resolvers=resolvers,
        timeouts=timeouts,
        limit_conn_zone_size=_size(
            get["limit_conn_zone_size"], f"{prefix}limit_conn_zone_size", ZONE_MIN, ZONE_MAX
        ),
        client_max_body_size=defaults["body"],
        upstream_networks=tuple(networks[len(PRIVATE_NETWORKS) :]),
    )
