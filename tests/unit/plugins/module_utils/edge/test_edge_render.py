"""The nginx renderer: the exact text of a site, the profile's TLS lines, the default server, quoting."""

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.edge import model, profiles, render

OLD, NEW = render.Target(nginx_version=(1, 22, 1)), render.Target(nginx_version=(1, 26, 3))
HEADERS = [
    'add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;',
    "add_header Content-Security-Policy \"default-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'\" always;",
    'add_header X-Frame-Options "DENY" always;',
    'add_header X-Content-Type-Options "nosniff" always;',
    'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
    'add_header Permissions-Policy "camera=(), geolocation=(), microphone=(), payment=(), usb=()" always;',
]


def _config(**options):
    site = {
        "name": "app",
        "server_names": ["app.example.org", "www.example.org"],
        "upstream": "http://127.0.0.1:8080",
        "locations": [{"path": "/"}, {"path": "/login", "login": True}],
    }
    return model.build({"sites": [site], "certificates": [{"name": "app"}], **options})


def _indent(lines, depth):
    return [("    " * depth + line) if line else "" for line in lines]


def test_a_site_renders_exactly_on_nginx_1_22():
    config = _config()
    text = render.site_conf(config, config.sites[0], target=OLD)
    expected = [
        "# Managed by bulwark.hardening (edge); changes here are overwritten.",
        "limit_req_zone $binary_remote_addr zone=edge_app_req0:10m rate=20r/s;",
        "limit_req_zone $binary_remote_addr zone=edge_app_req1:10m rate=10r/m;",
        "limit_conn_zone $binary_remote_addr zone=edge_app_conn:10m;",
        "",
        "server {",
        *_indent(
            [
                "listen 80;",
                "listen [::]:80;",
                "server_name app.example.org www.example.org;",
                'access_log "/var/log/nginx/app.access.log" bulwark_edge;',
                'error_log "/var/log/nginx/app.error.log";',
                "",
                "location ^~ /.well-known/acme-challenge/ {",
                '    root "/var/lib/bulwark/edge/acme";',
                "    default_type text/plain;",
                "    try_files $uri =404;",
                "}",
                "location / {",
                "    return 301 https://$host$request_uri;",
                "}",
            ],
            1,
        ),
        "}",
        "",
        "server {",
        *_indent(
            [
                "listen 443 ssl http2;",
                "listen [::]:443 ssl http2;",
                "server_name app.example.org www.example.org;",
                'ssl_certificate "/etc/bulwark/edge/certs/app/fullchain.pem";',
                'ssl_certificate_key "/etc/bulwark/edge/certs/app/privkey.pem";',
                'access_log "/var/log/nginx/app.access.log" bulwark_edge;',
                'error_log "/var/log/nginx/app.error.log";',
                "client_max_body_size 1m;",
                "proxy_http_version 1.1;",
                'proxy_set_header Connection "";',
                "proxy_set_header Host $host;",
                "proxy_set_header X-Real-IP $remote_addr;",
                "proxy_set_header X-Forwarded-For $remote_addr;",
                "proxy_set_header X-Forwarded-Proto https;",
                *HEADERS,
                "",
                "location / {",
                "    limit_req zone=edge_app_req0 burst=40 nodelay;",
                "    limit_conn edge_app_conn 50;",
                *_indent(HEADERS, 1),
                "    proxy_pass http://127.0.0.1:8080;",
                "}",
                "",
                "location /login {",
                "    limit_req zone=edge_app_req1 burst=5 nodelay;",
                "    limit_conn edge_app_conn 50;",
                *_indent(HEADERS, 1),
                "    proxy_pass http://127.0.0.1:8080;",
                "}",
            ],
            1,
        ),
        "}",
        "",
    ]
    assert text.split("\n") == expected


def test_nginx_1_26_says_http2_on_and_a_site_without_ipv6_or_root_location():
    config = model.build(
        {
            "sites": [{"name": "api", "server_names": ["api.example.org"], "upstream": "unix:/run/api.sock",
                       "locations": [{"path": "/v1/"}]}],
            "certificates": [{"name": "api", "source": "internal"}],
        }
    )  # fmt: skip
    target = render.Target(nginx_version=(1, 26, 3), ipv6=False, http_port=8080, https_port=8443)
    text = render.site_conf(config, config.sites[0], target=target)
    assert "    listen 8443 ssl;\n    http2 on;\n" in text
    assert "[::]" not in text and "http2;" not in text.replace("http2 on;", "")
    assert "return 301 https://$host:8443$request_uri;" in text
    assert "    location / {\n        return 404;\n    }\n}\n" in text
    assert "proxy_pass http://unix:/run/api.sock:;" in text


def test_the_main_file_carries_the_intermediate_profile_and_the_default_server():
    text = render.main_conf(_config(), target=OLD)
    intermediate = profiles.PROFILES["intermediate"]
    for line in (
        "server_tokens off;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        f"ssl_ciphers {':'.join(intermediate.ciphers)};",
        "ssl_ecdh_curve X25519:prime256v1:secp384r1;",
        "ssl_prefer_server_ciphers off;",
        "ssl_session_timeout 1d;",
        "ssl_session_cache shared:bulwark_tls:10m;",
        "ssl_session_tickets off;",
        'ssl_dhparam "/etc/nginx/bulwark/ffdhe2048.pem";',
        "limit_req_status 429;",
        "limit_conn_status 429;",
        "client_max_body_size 1m;",
        "client_header_timeout 10s;",
        "proxy_read_timeout 60s;",
        'include "/etc/nginx/bulwark/sites/*.conf";',
    ):
        assert f"\n    {line}\n" in text, line
    default = (
        "    server {\n"
        "        # Unknown names: no certificate, no answer.\n"
        "        listen 80 default_server;\n"
        "        listen [::]:80 default_server;\n"
        "        listen 443 ssl http2 default_server;\n"
        "        listen [::]:443 ssl http2 default_server;\n"
        "        ssl_reject_handshake on;\n"
        "        access_log off;\n"
        "        return 444;\n"
        "    }\n"
    )
    assert default in text
    assert "resolver" not in text and "X-XSS-Protection" not in text


def test_the_modern_profile_has_no_cipher_list_and_no_dh_parameters():
    config = _config(profile="modern")
    text = render.main_conf(config, target=NEW)
    assert "\n    ssl_protocols TLSv1.3;\n" in text
    assert "ssl_ciphers" not in text and "ssl_dhparam" not in text
    files = render.render(config, target=NEW)
    assert sorted(files) == ["/etc/nginx/bulwark/sites/app.conf", "nginx.conf"]
    assert render.render(_config(), target=NEW)["/etc/nginx/bulwark/ffdhe2048.pem"] == profiles.FFDHE2048_PEM


def test_ocsp_is_stapled_only_for_a_certificate_with_an_ocsp_url_and_a_resolver():
    without_resolver = _config()
    with_resolver = _config(resolvers=["127.0.0.53", "::1"])
    site = with_resolver.sites[0]
    assert "ssl_stapling" not in render.site_conf(with_resolver, site, target=OLD)
    assert "ssl_stapling" not in render.site_conf(without_resolver, site, target=OLD, ocsp={"app"})
    stapled = render.site_conf(with_resolver, site, target=OLD, ocsp={"app"})
    assert (
        "    ssl_stapling on;\n    ssl_stapling_verify on;\n"
        '    ssl_trusted_certificate "/etc/bulwark/edge/certs/app/chain.pem";\n'
    ) in stapled
    assert "\n    resolver 127.0.0.53 [::1] valid=300s;\n" in render.main_conf(with_resolver, target=OLD)


def test_a_location_header_override_keeps_the_full_set_in_that_location():
    config = _config(
        sites=[{"name": "app", "server_names": ["app.example.org"], "upstream": "http://127.0.0.1:1",
                "locations": [{"path": "/", "headers": {"X-Frame-Options": 'x "y"'}}]}]
    )  # fmt: skip
    text = render.site_conf(config, config.sites[0], target=OLD)
    assert '        add_header X-Frame-Options "x \\"y\\"" always;\n' in text
    assert text.count("add_header Strict-Transport-Security") == 2


def test_rendering_is_deterministic():
    assert render.render(_config(), target=OLD) == render.render(_config(), target=OLD)


@pytest.mark.parametrize(
    "value",
    ["$host", "a\\b", "a\nb", "a\x00b", "a\u2028b", None],
    ids=["dollar", "backslash", "lf", "nul", "ls", "none"],
)
def test_quote_refuses_what_nginx_would_read_otherwise(value):
    with pytest.raises(render.RenderError):
        render.quote(value)


def test_quote_escapes_double_quotes_only():
    assert render.quote("a 'b'; {c} #d \"e\"") == '"a \'b\'; {c} #d \\"e\\""'


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (render.Layout(log_dir="/var/log/ng inx"), "layout.log_dir: '/var/log/ng inx' holds ' '"),
        (render.Layout(cert_dir="certs"), "layout.cert_dir: 'certs' is not an absolute path"),
        (render.Layout(conf_dir="/etc/$x"), "layout.conf_dir: '/etc/$x' holds '$'"),
        (render.Layout(user="www data"), "layout.user: 'www data' is not a user name"),
    ],
)
def test_a_layout_that_is_not_plain_is_refused(layout, message):
    with pytest.raises(render.RenderError, match="Nothing was applied") as caught:
        render.main_conf(_config(), layout=layout)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (render.Target(nginx_version=(1, 18, 0)), "is older than 1.19.4"),
        (render.Target(http_port=0), "target.http_port: 0 is not a port"),
        (render.Target(http_port=443), "http_port and https_port are the same port"),
    ],
)
def test_a_target_it_cannot_serve_is_refused(target, message):
    with pytest.raises(render.RenderError, match=message):
        render.main_conf(_config(), target=target)


def test_nginx_version_is_read_from_nginx_v():
    assert render.nginx_version("nginx version: nginx/1.22.1\n") == (1, 22, 1)
    assert render.nginx_version("nginx version: nginx/1.26.3 (Debian)") == (1, 26, 3)
    assert render.nginx_version("command not found") is None
