"""nginx's configuration for the edge, rendered from a model.Config (pure: text out, deterministic).

Files (relative to the layout's directories), each whole and owned by the collection:
- `nginx.conf`: the main file. It replaces Debian's, whose http block sets ssl_protocols and
  ssl_prefer_server_ciphers itself (a second ssl_protocols in the same block is an error). It holds the
  profile's TLS settings, `server_tokens off`, bounded sizes and timeouts, the access log format, the
  default server, and includes one file per site.
- `sites/<site>.conf`: the site's limit_req/limit_conn zones (http level: the file is included in the http
  block) and its two servers. One file per site lets the module check and activate each site on its own, so
  one bad site never takes the others down.
- `ffdhe2048.pem` when the profile enables a DHE suite (profiles.FFDHE2048_PEM).

Every value comes from the model (closed alphabets, integers, parsed addresses) or from the layout, whose
paths pass text.plain_path; every path and header value is written between double quotes by `quote`, which
refuses what nginx would read as a variable, an escape or a line break.
"""

import re
from dataclasses import dataclass, fields

from ansible_collections.bulwark.hardening.plugins.module_utils import text as text_checks
from ansible_collections.bulwark.hardening.plugins.module_utils.edge import profiles

HEADER = "# Managed by bulwark.hardening (edge); changes here are overwritten.\n"
LOG_FORMAT = "bulwark_edge"
# nginx's "combined" format first, so fail2ban's nginx filters (nginx-botsearch, nginx-bad-request) read the
# access logs as they are; the virtual host and the request time after it. The limit_req jail reads the
# error log (nginx's own "limiting requests ... client: <HOST>" lines).
LOG_FIELDS = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$host" $request_time'
)
MIN_NGINX = (1, 19, 4)  # ssl_reject_handshake
HTTP2_DIRECTIVE = (1, 25, 1)  # `http2 on;` replaces `listen ... http2`
ACME_PATH = "/.well-known/acme-challenge/"


class RenderError(ValueError):
    """A layout or target the renderer cannot write safely."""


@dataclass(frozen=True)
class Layout:
    """Where things live on the host (tests point it at a temporary tree)."""

    conf_dir: str = "/etc/nginx/bulwark"  # nginx.conf is written to /etc/nginx/nginx.conf by the module
    cert_dir: str = "/etc/bulwark/edge/certs"  # <cert_dir>/<name>/{fullchain,privkey,chain}.pem
    acme_webroot: str = "/var/lib/bulwark/edge/acme"
    log_dir: str = "/var/log/nginx"
    pid: str = "/run/nginx.pid"
    mime_types: str = "/etc/nginx/mime.types"
    modules_dir: str = "/etc/nginx/modules-enabled"  # empty: no dynamic modules included
    user: str = "www-data"  # empty: nginx's default (the user that starts it)

    def check(self):
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "user":
                if value and not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
                    raise RenderError(f"layout.user: {value!r} is not a user name. Nothing was applied")
            elif value or item.name not in ("mime_types", "modules_dir"):
                try:
                    text_checks.plain_path(value, f"layout.{item.name}")
                except ValueError as exc:
                    raise RenderError(str(exc)) from None
        return self


@dataclass(frozen=True)
class Target:
    """What the host runs: nginx's version (from `nginx -v`), the ports, whether IPv6 listens too."""

    nginx_version: tuple = (1, 22, 1)
    http_port: int = 80
    https_port: int = 443
    ipv6: bool = True

    def check(self):
        if tuple(self.nginx_version) < MIN_NGINX:
            wanted = ".".join(map(str, MIN_NGINX))
            raise RenderError(f"nginx {self.nginx_version} is older than {wanted}. Nothing was applied")
        for name in ("http_port", "https_port"):
            port = getattr(self, name)
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise RenderError(f"target.{name}: {port!r} is not a port. Nothing was applied")
        if self.http_port == self.https_port:
            raise RenderError("target: http_port and https_port are the same port. Nothing was applied")
        return self


def nginx_version(text):
    """(major, minor, patch) from `nginx -v`'s output ("nginx version: nginx/1.22.1"), or None."""
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(part) for part in match.groups()) if match else None


def quote(value):
    """value as one nginx token between double quotes. nginx reads '\\"' as '"' and '\\\\' as '\\'
    there; '$' would start a variable in most directives and has no escape, so it is refused, as is
    any control character (a line break ends nothing inside quotes, but the file's readers are lines)."""
    if not isinstance(value, str) or "$" in value or "\\" in value or text_checks.control_character(value):
        raise RenderError(f"{value!r} cannot be written as an nginx value. Nothing was applied")
    return '"' + value.replace('"', '\\"') + '"'


def _block(name, lines, indent=""):
    inner = "".join(f"{indent}    {line}\n" if line else "\n" for line in lines)
    return f"{indent}{name} {{\n{inner}{indent}}}\n"


def _listen(port, target, ssl=False, default=False):
    options = (" ssl" if ssl else "") + (
        " http2" if ssl and tuple(target.nginx_version) < HTTP2_DIRECTIVE else ""
    )
    options += " default_server" if default else ""
    lines = [f"listen {port}{options};"]
    if target.ipv6:
        lines.append(f"listen [::]:{port}{options};")
    if ssl and tuple(target.nginx_version) >= HTTP2_DIRECTIVE:
        lines.append("http2 on;")
    return lines


def dhparam_path(layout):
    return f"{layout.conf_dir}/ffdhe2048.pem"


def site_path(layout, site):
    return f"{layout.conf_dir}/sites/{site.name}.conf"


def certificate_paths(layout, name):
    """(fullchain, private key, chain) of certificate `name`, as the module stores every source."""
    base = f"{layout.cert_dir}/{name}"
    return f"{base}/fullchain.pem", f"{base}/privkey.pem", f"{base}/chain.pem"


def stapling(config, site, ocsp):
    """Whether site staples OCSP: only when its certificate carries an OCSP URL (ocsp: the names of such
    certificates, read on the host) and a resolver is configured to reach the responder."""
    return config.profile.ocsp_staple and site.certificate in ocsp and bool(config.resolvers)


def _tls_lines(config, layout):
    profile = config.profile
    lines = [f"ssl_protocols {' '.join(profile.protocols)};"]
    if profile.ciphers:
        lines.append(f"ssl_ciphers {':'.join(profile.ciphers)};")
    lines += [
        f"ssl_ecdh_curve {':'.join(profile.curves)};",
        f"ssl_prefer_server_ciphers {'on' if profile.prefer_server_ciphers else 'off'};",
        f"ssl_session_timeout {profile.session_timeout};",
        f"ssl_session_cache shared:bulwark_tls:{profile.session_cache_size};",
        f"ssl_session_tickets {'on' if profile.session_tickets else 'off'};",
    ]
    if profile.uses_dhe:
        lines.append(f"ssl_dhparam {quote(dhparam_path(layout))};")
    if config.resolvers:
        addresses = " ".join(f"[{a}]" if ":" in a else a for a in config.resolvers)
        lines += [f"resolver {addresses} valid=300s;", "resolver_timeout 5s;"]
    return lines


def _limits_lines(config):
    timeouts = dict(config.timeouts)
    return [
        "server_tokens off;",
        # A server name may be 253 characters long; nginx's default bucket (64) refuses one over about 50.
        "server_names_hash_bucket_size 512;",
        f"client_max_body_size {config.client_max_body_size};",
        "client_body_buffer_size 16k;",
        "client_header_buffer_size 1k;",
        "large_client_header_buffers 4 8k;",
        f"client_header_timeout {timeouts['client_header']}s;",
        f"client_body_timeout {timeouts['client_body']}s;",
        f"send_timeout {timeouts['send']}s;",
        f"keepalive_timeout {timeouts['keepalive']}s;",
        f"proxy_connect_timeout {timeouts['proxy_connect']}s;",
        f"proxy_send_timeout {timeouts['proxy_send']}s;",
        f"proxy_read_timeout {timeouts['proxy_read']}s;",
        "limit_req_status 429;",
        "limit_conn_status 429;",
    ]


def default_server_lines(target):
    """A server for every name no site declares: the TLS handshake is refused (no certificate is shown
    for an unknown name), and plain HTTP connections are closed without an answer."""
    lines = ["# Unknown names: no certificate, no answer."]
    lines += _listen(target.http_port, target, default=True)
    lines += _listen(target.https_port, target, ssl=True, default=True)
    lines += ["ssl_reject_handshake on;", "access_log off;", "return 444;"]
    return lines


def main_conf(config, layout=Layout(), target=Target()):
    """/etc/nginx/nginx.conf."""
    layout.check()
    target.check()
    top = []
    if layout.user:
        top.append(f"user {layout.user};")
    top += ["worker_processes auto;", f"pid {quote(layout.pid)};"]
    if layout.modules_dir:
        top.append(f"include {quote(layout.modules_dir + '/*.conf')};")
    top.append(f"error_log {quote(layout.log_dir + '/error.log')} warn;")
    http = []
    if layout.mime_types:
        http.append(f"include {quote(layout.mime_types)};")
    http += [
        "default_type application/octet-stream;",
        "sendfile on;",
        "tcp_nopush on;",
        f"log_format {LOG_FORMAT} '{LOG_FIELDS}';",
        f"access_log {quote(layout.log_dir + '/access.log')} {LOG_FORMAT};",
        "",
        *_limits_lines(config),
        "",
        *_tls_lines(config, layout),
        "",
        "server {",
        *(f"    {line}" for line in default_server_lines(target)),
        "}",
        "",
        f"include {quote(layout.conf_dir + '/sites/*.conf')};",
    ]
    body = "".join(f"    {line}\n" if line else "\n" for line in http)
    return (
        HEADER + "\n".join(top) + "\n\nevents {\n    worker_connections 1024;\n}\n\nhttp {\n" + body + "}\n"
    )


def zone_names(site):
    """{RateLimit zone key: zone name} of a site, in order of first use (one zone per rate and size)."""
    zones = {}
    for location in site.locations:
        key = (location.rate_limit.rate, location.rate_limit.zone_size)
        zones.setdefault(key, f"edge_{site.name}_req{len(zones)}")
    return zones


def conn_zone(site):
    return f"edge_{site.name}_conn"


def _header_lines(site, headers):
    lines = [f"add_header Strict-Transport-Security {quote(site.hsts.value)} always;"]
    lines += [f"add_header {name} {quote(value)} always;" for name, value in headers]
    return lines


def _location_lines(site, location, zones):
    rate = location.rate_limit
    limit = f"limit_req zone={zones[(rate.rate, rate.zone_size)]}"
    limit += f" burst={rate.burst}" if rate.burst else ""
    limit += " nodelay" if rate.nodelay else ""
    lines = [f"{limit};", f"limit_conn {conn_zone(site)} {site.limit_conn};"]
    if location.client_max_body_size != site.client_max_body_size:
        lines.append(f"client_max_body_size {location.client_max_body_size};")
    # add_header in a location replaces every add_header of the server: each location carries the full set.
    lines += _header_lines(site, location.headers)
    lines.append(f"proxy_pass {location.upstream.url};")
    if location.upstream.scheme == "https":
        lines.append("proxy_ssl_server_name on;")
    return lines


def site_conf(config, site, layout=Layout(), target=Target(), ocsp=frozenset()):
    """sites/<site>.conf: the site's zones, its port-80 server (ACME challenge, else 301 to https) and its
    TLS server."""
    layout.check()
    target.check()
    zones = zone_names(site)
    names = " ".join(site.server_names)
    out = [HEADER]
    for (rate, size), zone in zones.items():
        out.append(f"limit_req_zone $binary_remote_addr zone={zone}:{size} rate={rate};\n")
    out.append(
        f"limit_conn_zone $binary_remote_addr zone={conn_zone(site)}:{config.limit_conn_zone_size};\n\n"
    )
    https = "https://$host" + ("" if target.https_port == 443 else f":{target.https_port}")
    plain = [
        *_listen(target.http_port, target),
        f"server_name {names};",
        f"access_log {quote(f'{layout.log_dir}/{site.name}.access.log')} {LOG_FORMAT};",
        f"error_log {quote(f'{layout.log_dir}/{site.name}.error.log')};",
        "",
        f"location ^~ {ACME_PATH} {{",
        f"    root {quote(layout.acme_webroot)};",
        "    default_type text/plain;",
        "    try_files $uri =404;",
        "}",
        "location / {",
        f"    return 301 {https}$request_uri;",
        "}",
    ]
    out.append(_block("server", plain) + "\n")
    fullchain, key, chain = certificate_paths(layout, site.certificate)
    tls = [
        *_listen(target.https_port, target, ssl=True),
        f"server_name {names};",
        f"ssl_certificate {quote(fullchain)};",
        f"ssl_certificate_key {quote(key)};",
    ]
    if stapling(config, site, ocsp):
        tls += ["ssl_stapling on;", "ssl_stapling_verify on;", f"ssl_trusted_certificate {quote(chain)};"]
    tls += [
        f"access_log {quote(f'{layout.log_dir}/{site.name}.access.log')} {LOG_FORMAT};",
        f"error_log {quote(f'{layout.log_dir}/{site.name}.error.log')};",
        f"client_max_body_size {site.client_max_body_size};",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Proto https;",
        *_header_lines(site, site.headers),
    ]
    for location in site.locations:
        tls += ["", *_block(f"location {location.path}", _location_lines(site, location, zones)).splitlines()]
    if not any(location.path == "/" for location in site.locations):
        tls += ["", "location / {", "    return 404;", "}"]
    out.append(_block("server", tls))
    return "".join(out)


def render(config, layout=Layout(), target=Target(), ocsp=frozenset()):
    """{path: text} of every file the edge writes (nginx.conf under the key 'nginx.conf')."""
    files = {"nginx.conf": main_conf(config, layout, target)}
    if config.profile.uses_dhe:
        files[dhparam_path(layout)] = profiles.FFDHE2048_PEM
    for site in config.sites:
        files[site_path(layout, site)] = site_conf(config, site, layout, target, ocsp)
    return files
