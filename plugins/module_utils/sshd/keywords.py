"""The sshd_config(5) keywords of OpenSSH 9.2 (Debian 12) to 10.0 (Debian 13), with Debian's additions.

Each keyword maps to (how a list value is rendered, whether it is allowed inside a Match block).
How a list renders: COMMA joins the elements with commas (algorithm lists), SPACE joins them with
spaces (user and group lists, AuthorizedKeysFile, ...), REPEAT writes one line per element
(HostKey, Port, ...), SCALAR refuses a list.
"""

import re

COMMA = "comma"
SPACE = "space"
REPEAT = "repeat"
SCALAR = "scalar"

# canonical name: (list rendering, allowed in Match)
KEYWORDS = {
    "AcceptEnv": (REPEAT, True),
    "AddressFamily": (SCALAR, False),
    "AllowAgentForwarding": (SCALAR, True),
    "AllowGroups": (SPACE, True),
    "AllowStreamLocalForwarding": (SCALAR, True),
    "AllowTcpForwarding": (SCALAR, True),
    "AllowUsers": (SPACE, True),
    "AuthenticationMethods": (SPACE, True),
    "AuthorizedKeysCommand": (SCALAR, True),
    "AuthorizedKeysCommandUser": (SCALAR, True),
    "AuthorizedKeysFile": (SPACE, True),
    "AuthorizedPrincipalsCommand": (SCALAR, True),
    "AuthorizedPrincipalsCommandUser": (SCALAR, True),
    "AuthorizedPrincipalsFile": (SCALAR, True),
    "Banner": (SCALAR, True),
    "CASignatureAlgorithms": (COMMA, True),
    "ChannelTimeout": (SPACE, True),
    "ChrootDirectory": (SCALAR, True),
    "Ciphers": (COMMA, False),
    "ClientAliveCountMax": (SCALAR, True),
    "ClientAliveInterval": (SCALAR, True),
    "Compression": (SCALAR, False),
    "DebianBanner": (SCALAR, False),
    "DenyGroups": (SPACE, True),
    "DenyUsers": (SPACE, True),
    "DisableForwarding": (SCALAR, True),
    "ExposeAuthInfo": (SCALAR, True),
    "FingerprintHash": (SCALAR, False),
    "ForceCommand": (SCALAR, True),
    "GatewayPorts": (SCALAR, True),
    "GSSAPIAuthentication": (SCALAR, True),
    "GSSAPICleanupCredentials": (SCALAR, False),
    "GSSAPIKexAlgorithms": (COMMA, False),
    "GSSAPIKeyExchange": (SCALAR, False),
    "GSSAPIStoreCredentialsOnRekey": (SCALAR, False),
    "GSSAPIStrictAcceptorCheck": (SCALAR, False),
    "HostbasedAcceptedAlgorithms": (COMMA, True),
    "HostbasedAuthentication": (SCALAR, True),
    "HostbasedUsesNameFromPacketOnly": (SCALAR, True),
    "HostCertificate": (REPEAT, False),
    "HostKey": (REPEAT, False),
    "HostKeyAgent": (SCALAR, False),
    "HostKeyAlgorithms": (COMMA, False),
    "IgnoreRhosts": (SCALAR, True),
    "IgnoreUserKnownHosts": (SCALAR, False),
    "IPQoS": (SPACE, True),
    "KbdInteractiveAuthentication": (SCALAR, True),
    "KerberosAuthentication": (SCALAR, True),
    "KerberosGetAFSToken": (SCALAR, False),
    "KerberosOrLocalPasswd": (SCALAR, False),
    "KerberosTicketCleanup": (SCALAR, False),
    "KexAlgorithms": (COMMA, False),
    "ListenAddress": (REPEAT, False),
    "LoginGraceTime": (SCALAR, False),
    "LogLevel": (SCALAR, True),
    "LogVerbose": (COMMA, True),
    "MACs": (COMMA, False),
    "MaxAuthTries": (SCALAR, True),
    "MaxSessions": (SCALAR, True),
    "MaxStartups": (SCALAR, False),
    "ModuliFile": (SCALAR, False),
    "PasswordAuthentication": (SCALAR, True),
    "PermitEmptyPasswords": (SCALAR, True),
    "PermitListen": (SPACE, True),
    "PermitOpen": (SPACE, True),
    "PermitRootLogin": (SCALAR, True),
    "PermitTTY": (SCALAR, True),
    "PermitTunnel": (SCALAR, True),
    "PermitUserEnvironment": (SCALAR, False),
    "PermitUserRC": (SCALAR, True),
    "PerSourceMaxStartups": (SCALAR, False),
    "PerSourceNetBlockSize": (SCALAR, False),
    "PerSourcePenalties": (SPACE, False),  # OpenSSH 9.8+
    "PerSourcePenaltyExemptList": (COMMA, False),  # OpenSSH 9.8+
    "PidFile": (SCALAR, False),
    "Port": (REPEAT, False),
    "PrintLastLog": (SCALAR, False),
    "PrintMotd": (SCALAR, False),
    "PubkeyAcceptedAlgorithms": (COMMA, True),
    "PubkeyAuthentication": (SCALAR, True),
    "PubkeyAuthOptions": (SPACE, True),
    "RDomain": (SCALAR, True),
    "RefuseConnection": (SCALAR, True),  # OpenSSH 10.0+
    "RekeyLimit": (SPACE, True),
    "RequiredRSASize": (SCALAR, False),
    "RevokedKeys": (SCALAR, True),
    "SecurityKeyProvider": (SCALAR, False),
    "SetEnv": (SPACE, True),
    "SshdAuthPath": (SCALAR, False),  # OpenSSH 10.0+
    "SshdSessionPath": (SCALAR, False),  # OpenSSH 9.8+
    "StreamLocalBindMask": (SCALAR, True),
    "StreamLocalBindUnlink": (SCALAR, True),
    "StrictModes": (SCALAR, False),
    "Subsystem": (REPEAT, False),
    "SyslogFacility": (SCALAR, False),
    "TCPKeepAlive": (SCALAR, False),
    "TrustedUserCAKeys": (SCALAR, True),
    "UnusedConnectionTimeout": (SCALAR, True),
    "UseDNS": (SCALAR, False),
    "UsePAM": (SCALAR, False),
    "VersionAddendum": (SCALAR, False),
    "X11DisplayOffset": (SCALAR, True),
    "X11Forwarding": (SCALAR, True),
    "X11UseLocalhost": (SCALAR, True),
    "XAuthLocation": (SCALAR, False),
}

# Keywords the module refuses: Match has its own option, Include would let other files in unvalidated.
FORBIDDEN = {
    "match": "use the module's `match` option for Match blocks",
    "include": "the module manages the Include in main_config; the drop-in may not include others",
}

# Old names OpenSSH still accepts, mapped to the current ones.
ALIASES = {
    "challengeresponseauthentication": "KbdInteractiveAuthentication",
    "pubkeyacceptedkeytypes": "PubkeyAcceptedAlgorithms",
    "hostbasedacceptedkeytypes": "HostbasedAcceptedAlgorithms",
}

_BY_LOWER = {name.lower(): name for name in KEYWORDS}
# The whole key: "PermitRootLogin\n" must not pass as PermitRootLogin.
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")


class KeywordError(ValueError):
    """A keyword the module does not accept; the message names it."""


def canonical(keyword, in_match=False):
    """The canonical spelling of a keyword (case-insensitive input); KeywordError names a bad one."""
    if not isinstance(keyword, str) or not _KEYWORD.fullmatch(keyword):
        raise KeywordError(f"invalid sshd keyword: {keyword!r}")
    low = keyword.lower()
    if low in FORBIDDEN:
        raise KeywordError(f"sshd keyword {keyword!r} is not allowed: {FORBIDDEN[low]}")
    name = _BY_LOWER.get(low) or ALIASES.get(low)
    if name is None:
        raise KeywordError(f"unknown sshd keyword: {keyword!r}")
    if in_match and not KEYWORDS[name][1]:
        raise KeywordError(f"sshd keyword {name!r} is not allowed inside a Match block")
    return name


def list_style(name):
    return KEYWORDS[name][0]
