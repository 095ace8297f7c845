"""Which firewall managers are active on a host, and whether they compete with the chosen backend.

"A host that mixes them" means two managers competing for the same hooks (UFW enabled while the
nftables backend is chosen, firewalld running), not Docker's or fail2ban's own rules, which cooperate.
"""


def ufw_enabled(ufw_conf_text):
    """/etc/ufw/ufw.conf content -> True when UFW is enabled (ENABLED=yes)."""
    for line in (ufw_conf_text or "").splitlines():
        key, _unused, value = line.strip().partition("=")
        if key.strip() == "ENABLED":
            return value.strip().strip("'\"").lower() == "yes"
    return False


def conflict(backend, *, ufw_conf_text="", firewalld_running=False):
    """A message naming the competing manager, or None."""
    if firewalld_running:
        return (
            f"backend: {backend} was chosen but firewalld is running: two firewall managers would "
            "compete for the same hooks. Stop and disable firewalld. Nothing was applied"
        )
    if backend != "ufw" and ufw_enabled(ufw_conf_text):
        return (
            f"backend: {backend} was chosen but UFW is enabled (/etc/ufw/ufw.conf ENABLED=yes): "
            "two firewall managers would compete for the same hooks. Run `ufw disable`, or choose "
            "bulwark_firewall_backend: ufw. Nothing was applied"
        )
    return None


# Cooperating owners, recognised once for every backend: Docker (its chains, its bridges, its tables) and
# fail2ban (f2b-* tables and chains). Their objects are left alone by the purge and trusted by the guard
# (fail2ban never bans the admin networks; Docker's chains only handle its own bridges).
COOPERATING_PREFIXES = ("DOCKER", "docker", "f2b-")
COOPERATING_INTERFACES = ("docker", "br-")


def cooperating_name(name):
    """True for a table, chain or jump target that Docker or fail2ban owns."""
    return (name or "").startswith(COOPERATING_PREFIXES)


def cooperating_interface(name):
    """True for an interface of Docker's bridges."""
    return (name or "").startswith(COOPERATING_INTERFACES)
