"""The edge's nginx configuration against the real nginx: any input the model accepts renders a configuration
that `nginx -t` accepts without a warning, holding exactly the directives intended (read back with nginx's
own token rules); any input it refuses is refused naming the option. Then a running nginx answers as the
configuration says: the headers exactly as given, a redirect on port 80, 429 over the login limit, no
handshake for an unknown name, no cipher outside the profile.

nginx reads a temporary tree (configuration, a self-signed certificate made with `cryptography`, logs);
upstream names resolve through a hosts file bind-mounted over /etc/hosts in the suite's private mount
namespace. Skipped, saying so, only when nginx is not installed.
"""

import datetime
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.edge import model, profiles, render

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
pytestmark = pytest.mark.skipif(
    NGINX is None,
    reason="nginx is not installed (apt-get install --no-install-recommends nginx, with a policy-rc.d that "
    "keeps it from starting)",
)
UPSTREAM_NAMES = ("backend", "app.internal", "api-1.svc.cluster.local")
SPECIAL = [*" \"'\\#;{}$`()=,:/@*\t\n\r\x00\x0b\x7f", "é", "\u2028", "\x85"]
CHARS = st.sampled_from(SPECIAL) | st.characters(min_codepoint=0x21, max_codepoint=0x7E)
TEXT = st.text(CHARS, min_size=1, max_size=16)
HOSTILE = [
    'x" always; add_header X-Evil "1',
    "x; return 200 evil",
    "x }\nserver { listen 81; }",
    "x # comment",
    "#x",
    "$host",
    "${host}",
    "a\\",
    'a\\"b',
    "'a' \"b\" {c} ;d",
    "`touch /tmp/x`",
    "$(touch /tmp/x)",
    "x\nadd_header X-Evil 1;",
    "x\radd_header X-Evil 1;",
    "x\x00y",
    "x\u2028y",
]
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# --- nginx's token rules (src/core/ngx_conf_file.c: ngx_conf_read_token), to read back what nginx reads --


class ConfError(AssertionError):
    pass


def tokens(text):
    """The directives of text as nginx splits them: [(name, [args], children or None)]."""
    stack, current, args = [], [], []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif ch in ";{":
            if not args:
                raise ConfError(f"unexpected {ch!r} at {i}")
            node = (args[0], args[1:], [] if ch == "{" else None)
            current.append(node)
            if ch == "{":
                stack.append(current)
                current = node[2]
            args = []
            i += 1
        elif ch == "}":
            if args or not stack:
                raise ConfError(f"unexpected '}}' at {i}")
            current = stack.pop()
            i += 1
        else:
            word, i = _word(text, i)
            args.append(word)
    if args or stack:
        raise ConfError("unexpected end of file")
    return current


def _word(text, i):
    quote = text[i] if text[i] in "\"'" else None
    start = i + 1 if quote else i
    j, variable = start, False
    while j < len(text):
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{" and variable:
            j += 1
            continue
        variable = ch == "$"
        if quote and ch == quote:
            if j + 1 < len(text) and text[j + 1] not in " \t\r\n;{":
                raise ConfError(f"unexpected {text[j + 1]!r} after a quoted word")
            return _unescape(text[start:j]), j + 1
        if not quote and ch in " \t\r\n;{":
            return _unescape(text[start:j]), j
        j += 1
    raise ConfError("unexpected end of file in a word")


def _unescape(raw):
    out, k = [], 0
    while k < len(raw):
        if raw[k] == "\\" and k + 1 < len(raw):
            nxt = raw[k + 1]
            if nxt in "\"'\\":
                out.append(nxt)
                k += 2
                continue
            if nxt in "trn":
                out.append({"t": "\t", "r": "\r", "n": "\n"}[nxt])
                k += 2
                continue
        out.append(raw[k])
        k += 1
    return "".join(out)


def _named(nodes, name):
    return [node for node in nodes if node[0] == name]


# --- the tree nginx reads ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """A private key and a self-signed certificate carrying an OCSP URL (an address: no DNS at nginx -t)."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bulwark edge test")])
    now = datetime.datetime.now(datetime.UTC)
    ocsp = x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier("http://127.0.0.1:9/")
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.AuthorityInformationAccess([ocsp]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """A hosts file of the test's over /etc/hosts (this mount namespace only); write() sets its names."""
    path = tmp_path_factory.mktemp("hosts") / "hosts"
    path.write_text("127.0.0.1 localhost\n")
    subprocess.run(["mount", "--bind", str(path), "/etc/hosts"], check=True)

    class Hosts:
        def write(self, names):
            with open(path, "w", encoding="ascii") as stream:  # in place: the bind mount keeps the inode
                stream.write("127.0.0.1 localhost " + " ".join(sorted(names)) + "\n")

    yield Hosts()
    subprocess.run(["umount", "-l", "/etc/hosts"], check=False)


@pytest.fixture(scope="module")
def target():
    done = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False)
    version = render.nginx_version(done.stderr + done.stdout)
    assert version, done.stderr
    return version


def layout_in(root):
    return render.Layout(
        conf_dir=f"{root}/conf",
        cert_dir=f"{root}/certs",
        acme_webroot=f"{root}/acme",
        log_dir=f"{root}/log",
        pid=f"{root}/nginx.pid",
        modules_dir="",
        user="",
    )


def write_tree(root, config, material, target, ocsp=frozenset()):
    """Render config into root; returns the layout and the rendered files."""
    shutil.rmtree(root, ignore_errors=True)
    layout = layout_in(root)
    for directory in (layout.conf_dir + "/sites", layout.log_dir, layout.acme_webroot):
        os.makedirs(directory)
    cert, key = material
    for certificate in config.certificates:
        directory = f"{layout.cert_dir}/{certificate.name}"
        os.makedirs(directory)
        for name, data in (("fullchain.pem", cert), ("chain.pem", cert), ("privkey.pem", key)):
            with open(f"{directory}/{name}", "wb") as stream:
                stream.write(data)
    files = render.render(config, layout, target, ocsp)
    for path, text in files.items():
        with open(
            path if path.startswith("/") else f"{layout.conf_dir}/{path}", "w", encoding="utf-8"
        ) as out:
            out.write(text)
    return layout, files


def nginx_t(layout):
    argv = [NGINX, "-t", "-q", "-e", "stderr", "-p", os.path.dirname(layout.conf_dir), "-c"]
    return subprocess.run(
        [*argv, f"{layout.conf_dir}/nginx.conf"], capture_output=True, text=True, check=False
    )


# --- what the configuration must say ---------------------------------------------------------------------

SERVER_DIRECTIVES = {
    "listen", "http2", "server_name", "ssl_certificate", "ssl_certificate_key", "ssl_stapling",
    "ssl_stapling_verify", "ssl_trusted_certificate", "access_log", "error_log", "client_max_body_size",
    "proxy_http_version", "proxy_set_header", "add_header", "location",
}  # fmt: skip
LOCATION_DIRECTIVES = {
    "limit_req", "limit_conn", "client_max_body_size", "add_header", "proxy_pass", "proxy_ssl_server_name",
}  # fmt: skip


def _headers_of(nodes):
    headers = [tuple(args) for name, args, _c in nodes if name == "add_header"]
    # nginx expands variables in add_header's value: a header is only what was meant if it holds none.
    assert not any("$" in value for _name, value, *_always in headers), headers
    return headers


def _intended_headers(site, headers):
    return [("Strict-Transport-Security", site.hsts.value, "always")] + [(n, v, "always") for n, v in headers]


def check_site(config, site, text):
    nodes = tokens(text)
    zones = {}
    for name, args, _children in nodes:
        assert name in ("limit_req_zone", "limit_conn_zone", "server"), name
        if name == "limit_req_zone":
            assert args[0] == "$binary_remote_addr" and args[2].startswith("rate="), args
            zones[args[1].split("=")[1].split(":")[0]] = (args[2][5:], args[1].split(":")[1])
    plain, tls = _named(nodes, "server")
    assert _named(plain[2], "server_name")[0][1] == list(site.server_names)
    assert _named(tls[2], "server_name")[0][1] == list(site.server_names)
    assert {name for name, _a, _c in tls[2]} <= SERVER_DIRECTIVES
    assert _headers_of(tls[2]) == _intended_headers(site, site.headers)
    locations = _named(tls[2], "location")
    wanted = [[location.path] for location in site.locations]
    if not any(location.path == "/" for location in site.locations):
        wanted.append(["/"])
    assert [args for _n, args, _c in locations] == wanted
    for location, (_n, _args, children) in zip(site.locations, locations[: len(site.locations)], strict=True):
        assert {name for name, _a, _c in children} <= LOCATION_DIRECTIVES
        assert _headers_of(children) == _intended_headers(site, location.headers)
        assert _named(children, "proxy_pass")[0][1] == [location.upstream.url]
        (limit,) = _named(children, "limit_req")
        zone = limit[1][0].split("=", 1)[1]
        assert zones[zone] == (location.rate_limit.rate, location.rate_limit.zone_size)
        burst = [f"burst={location.rate_limit.burst}"] if location.rate_limit.burst else []
        assert limit[1][1:] == burst + (["nodelay"] if location.rate_limit.nodelay else [])


def check_main(config, text):
    (http,) = _named(tokens(text), "http")
    directives = {name: args for name, args, _c in http[2]}
    assert directives["ssl_protocols"] == list(config.profile.protocols)
    assert directives.get("ssl_ciphers") == (
        [":".join(config.profile.ciphers)] if config.profile.ciphers else None
    )
    assert directives["server_tokens"] == ["off"]
    assert directives.get("resolver", [])[: len(config.resolvers)] == [
        f"[{a}]" if ":" in a else a for a in config.resolvers
    ]
    (default,) = _named(http[2], "server")
    assert _named(default[2], "ssl_reject_handshake")[0][1] == ["on"]
    assert _named(default[2], "return")[0][1] == ["444"]


# --- the property ------------------------------------------------------------------------------------------


VALID = {
    "server_names": st.lists(
        st.from_regex(r"[a-z0-9]{1,6}(\.[a-z0-9]{1,6}){0,2}\.(org|test)", fullmatch=True)
        | st.sampled_from(
            ["A.Example.ORG", "*.wild.example.org", "x" * 63 + ".example.org", ".".join(["a" * 60] * 4)]
        ),
        min_size=1,
        max_size=3,
        unique_by=str.lower,
    ),
    "upstream": st.sampled_from(
        [
            "http://127.0.0.1:8080",
            "https://10.0.0.5",
            "http://[fd00::1]:81",
            "unix:/run/app.sock",
            *(f"http://{name}:8080" for name in UPSTREAM_NAMES),
        ]
    ),
    "paths": st.lists(
        st.from_regex(r"/([a-z0-9._~!*+,=:@-]{1,8}(/[a-z0-9]{1,4}){0,2}/?)?", fullmatch=True),
        min_size=1,
        max_size=3,
        unique=True,
    ).filter(lambda paths: all(".." not in p.split("/") and "." not in p.split("/") for p in paths)),
    # Printable ASCII without '$' and '\\' (what a header value may hold), nginx's own syntax among it.
    "headers": st.dictionaries(
        st.sampled_from(["Content-Security-Policy", "X-Frame-Options", "X-Custom", "Permissions-Policy"]),
        st.text(
            st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="$\\"), max_size=24
        ).map(lambda text: text.strip() or "x"),
        max_size=3,
    ),
    "rate": st.from_regex(r"[1-9][0-9]{0,3}r/[sm]", fullmatch=True),
}
HOSTILE_INPUT = {
    "server_names": st.lists(TEXT, min_size=1, max_size=2),
    "upstream": TEXT | TEXT.map(lambda t: "http://" + t) | st.just("http://8.8.8.8:80"),
    "paths": st.lists(TEXT.map(lambda t: "/" + t), min_size=1, max_size=2, unique=True),
    "headers": st.dictionaries(
        TEXT | st.just("x-xss-protection"), st.sampled_from(HOSTILE) | TEXT, max_size=2
    ),
    "rate": TEXT,
}


@st.composite
def site_inputs(draw):
    """One site's input: every field valid but (in about half the examples) one hostile field."""
    hostile = draw(st.sampled_from([None, None, None, None, None, *HOSTILE_INPUT]))
    values = {field: draw(HOSTILE_INPUT[field] if field == hostile else VALID[field]) for field in VALID}
    values["location_headers"] = draw(VALID["headers"])
    return values


PLAIN = {
    "server_names": ["a.example.org"],
    "upstream": "unix:/run/a.sock",
    "paths": ["/"],
    "headers": {},
    "location_headers": {},
    "rate": "1r/s",
}


def _site(name, values):
    paths = values["paths"]
    return {
        "name": name,
        "server_names": values["server_names"],
        "upstream": values["upstream"],
        "certificate": "any",
        "headers": values["headers"],
        "locations": [{"path": p, "headers": values["location_headers"]} for p in paths[:1]]
        + [{"path": p, "login": True, "rate_limit": {"rate": values["rate"]}} for p in paths[1:]],
    }


def _options(site, profile="intermediate", resolvers=("127.0.0.53",)):
    other = {
        "name": "other",
        "server_names": ["other.example.org"],
        "upstream": "http://127.0.0.1:9000",
        "certificate": "any",
    }
    return {
        "profile": profile,
        "resolvers": list(resolvers),
        "certificates": [{"name": "any", "source": "internal"}],
        "sites": [site, other],
    }


def _accepted_or_named(options):
    try:
        config = model.build(options)
    except model.EdgeError as exc:
        message = str(exc)
        event("refused: " + message.split(":", 1)[0])
        assert message.endswith("Nothing was applied"), message
        assert message.split(":", 1)[0].startswith(("sites[0]", "profile", "resolvers")), message
        return None
    event("accepted")
    return config


def _upstream_names(config):
    return {
        location.upstream.host
        for site in config.sites
        for location in site.locations
        if location.upstream.host
        and not location.upstream.host[0].isdigit()
        and ":" not in location.upstream.host
    }


def _assert_nginx_reads_what_was_meant(config, material, target, hosts, root):
    hosts.write(_upstream_names(config))
    layout, files = write_tree(root, config, material, render.Target(nginx_version=target), ocsp={"any"})
    done = nginx_t(layout)
    assert done.returncode == 0, done.stderr + "\n" + "\n".join(files.values())
    assert "[warn]" not in done.stderr and "[emerg]" not in done.stderr, done.stderr
    check_main(config, files["nginx.conf"])
    for site in config.sites:
        check_site(config, site, files[render.site_path(layout, site)])


@SETTINGS
@given(values=site_inputs(), profile=st.sampled_from(["intermediate", "modern"]))
@example(
    values={
        "server_names": ["app.example.org", "*.app.example.org"],
        "upstream": "http://backend:8080",
        "paths": ["/", "/login"],
        "headers": {"X-Frame-Options": 'x" always; add_header X-Evil "1'},
        "location_headers": {"X-Custom": "'a' \"b\" {c} ;d #e"},
        "rate": "1r/m",
    },
    profile="intermediate",
)
@example(values={**PLAIN, "server_names": ["app.example.org;"]}, profile="modern")
@example(values={**PLAIN, "server_names": ["app.example.org\nserver_name evil.org"]}, profile="modern")
@example(values={**PLAIN, "upstream": "http://127.0.0.1:1;return 200"}, profile="modern")
@example(values={**PLAIN, "upstream": "http://127.0.0.1:1 }"}, profile="modern")
@example(values={**PLAIN, "paths": ["/x { return 200; }"]}, profile="modern")
@example(values={**PLAIN, "paths": ["/x#y"]}, profile="modern")
@example(values={**PLAIN, "headers": {"X-A": "${host}"}}, profile="modern")
@example(values={**PLAIN, "headers": {"X-A\nX-B": "1"}}, profile="modern")
@example(values={**PLAIN, "headers": {"X-A": 'a" always;\nadd_header X-B "b'}}, profile="modern")
@example(values={**PLAIN, "rate": "1r/s; limit_req_zone x"}, profile="modern")
@example(values={**PLAIN, "server_names": [".".join(["a" * 60] * 4)]}, profile="intermediate")
@example(values={**PLAIN, "upstream": "http://api-1.svc.cluster.local:8080"}, profile="intermediate")
def test_an_accepted_input_is_read_by_nginx_as_intended(tmp_path, material, target, hosts, values, profile):  # noqa: PLR0917
    site = _site("app", values)
    config = _accepted_or_named(_options(site, profile))
    if config is not None:
        _assert_nginx_reads_what_was_meant(config, material, target, hosts, str(tmp_path / "tree"))


# --- a running nginx -------------------------------------------------------------------------------------


class _Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"upstream ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _wait_for(port, proc):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nginx ended: {proc.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not listen")


@pytest.fixture
def running(tmp_path, material, target):
    """running(config): nginx started on the tree of config (ports 18080/18443, loopback of the suite's
    network namespace), stopped after the test."""
    started = []

    def start(config):
        tls_target = render.Target(nginx_version=target, http_port=18080, https_port=18443, ipv6=False)
        layout, _files = write_tree(str(tmp_path / "run"), config, material, tls_target)
        argv = [NGINX, "-e", "stderr", "-p", str(tmp_path / "run"), "-c", f"{layout.conf_dir}/nginx.conf"]
        proc = subprocess.Popen([*argv, "-g", "daemon off;"], stderr=subprocess.PIPE, text=True)
        started.append(proc)
        _wait_for(18443, proc)
        return proc

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _context(**kwargs):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for name, value in kwargs.items():
        if name == "ciphers":
            context.set_ciphers(value)
        else:
            setattr(context, name, value)
    return context


def _raw(data, port, sni=None, context=None):
    """The whole answer to one request on 127.0.0.1:port (TLS with sni when given)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        stream = (context or _context()).wrap_socket(sock, server_hostname=sni) if sni else sock
        stream.sendall(data)
        chunks = []
        while True:
            try:
                chunk = stream.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def _get(port, host, path="/", sni=True, context=None):
    answer = _raw(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(),
        port,
        sni=host if sni else None,
        context=context,
    )
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1]) if head[0] else 0
    headers = [tuple(line.split(": ", 1)) for line in head[1:]]
    return status, headers


ODD_BUT_FINE = "default-src 'self'; img-src 'self' data: {x} #y \"quoted\""


def test_a_running_nginx_answers_as_configured(running, upstream_server):
    config = model.build(
        {
            "resolvers": [],
            "certificates": [{"name": "app", "source": "internal"}],
            "sites": [{
                "name": "app", "server_names": ["app.example.org"], "upstream": f"http://127.0.0.1:{upstream_server}",
                "headers": {"Content-Security-Policy": ODD_BUT_FINE},
                "locations": [
                    {"path": "/"},
                    {"path": "/login", "login": True, "rate_limit": {"rate": "1r/m", "burst": 0}},
                ],
            }],
        }
    )  # fmt: skip
    running(config)
    status, headers = _get(18443, "app.example.org", "/")
    assert status == 200
    sent = [
        (name, value)
        for name, value in headers
        if name not in ("Date", "Content-Length", "Connection", "Content-Type")
    ]
    assert sent == [
        ("Server", "nginx"),
        *[(n, v) for n, v, _a in _intended_headers(config.sites[0], config.sites[0].headers)],
    ]

    # Port 80: only the redirect (and the ACME path); an unknown name gets no answer at all.
    status, headers = _get(18080, "app.example.org", "/a?b=1", sni=False)
    assert (status, dict(headers)["Location"]) == (301, "https://app.example.org:18443/a?b=1")
    assert _raw(b"GET / HTTP/1.1\r\nHost: unknown.example.org\r\n\r\n", 18080) == b""

    # An unknown name gets no certificate: the handshake is refused.
    with pytest.raises(ssl.SSLError):
        _get(18443, "unknown.example.org")

    # The login limit: one request a minute, no burst; the next is refused with 429 while / still serves.
    assert _get(18443, "app.example.org", "/login")[0] == 200
    assert _get(18443, "app.example.org", "/login")[0] == 429
    assert _get(18443, "app.example.org", "/")[0] == 200

    # TLS 1.2 with a suite of the profile works; a CBC suite outside it does not.
    tls12 = {"maximum_version": ssl.TLSVersion.TLSv1_2}
    assert (
        _get(18443, "app.example.org", context=_context(ciphers="ECDHE-ECDSA-AES128-GCM-SHA256", **tls12))[0]
        == 200
    )
    with pytest.raises(ssl.SSLError):
        _get(18443, "app.example.org", context=_context(ciphers="ECDHE-ECDSA-AES128-SHA", **tls12))


def test_the_modern_profile_refuses_tls_1_2(running, upstream_server):
    config = model.build(
        {
            "profile": "modern",
            "certificates": [{"name": "app", "source": "internal"}],
            "sites": [{"name": "app", "server_names": ["app.example.org"], "upstream": f"http://127.0.0.1:{upstream_server}"}],
        }
    )  # fmt: skip
    running(config)
    assert _get(18443, "app.example.org", context=_context(minimum_version=ssl.TLSVersion.TLSv1_3))[0] == 200
    with pytest.raises(ssl.SSLError):
        _get(18443, "app.example.org", context=_context(maximum_version=ssl.TLSVersion.TLSv1_2))


def test_every_suite_of_the_profile_is_one_openssl_knows():
    """A misspelt suite in the data would be dropped by OpenSSL without a word."""
    known = subprocess.run(["openssl", "ciphers", "ALL"], capture_output=True, text=True, check=True).stdout
    assert set(profiles.PROFILES["intermediate"].ciphers) <= set(known.strip().split(":"))
