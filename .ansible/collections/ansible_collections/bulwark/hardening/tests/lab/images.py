"""Lab base images: minimal Debian built from the archive with debootstrap, then `docker import`.

No image registry is reachable from these machines, so images are made from Debian's
archive. An image is rebuilt only when its recipe (this file and files/) changes: the
recipe's hash is stored as a label and compared before building.
"""

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

RELEASES = {"bookworm": "12", "trixie": "13"}
IMAGE_REPO = "bulwark-lab/debian"
RECIPE_LABEL = "org.bulwark.lab.recipe"
PACKAGES = "systemd,systemd-sysv,python3,openssh-server,iproute2,sudo,procps"
FILES = Path(__file__).with_name("files")
LAB_USER = "deploy"
# Set so that tests can prove password logins are refused after hardening; a lab fixture only.
LAB_PASSWORD = "lab-password-not-secret"  # noqa: S105


def image_tag(release):
    return f"{IMAGE_REPO}:{release}"


def apt_archives(sources_dir="/etc/apt"):
    """The machine's Debian archive and security archive URLs, read from apt's sources."""
    texts = []
    deb822 = sorted(Path(sources_dir).glob("sources.list.d/*.sources"))
    for path in [*deb822, Path(sources_dir, "sources.list")]:
        if path.is_file():
            texts.append(path.read_text())
    uris = []
    for text in texts:
        uris += re.findall(r"^URIs:\s*(\S+)", text, re.M)
        uris += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
    security = next((u for u in uris if u.rstrip("/").endswith("debian-security")), None)
    archive = next((u for u in uris if u.rstrip("/").endswith("/debian")), None)
    if not archive:
        sys.exit(f"lab: no Debian archive found in {sources_dir}/sources.list*")
    return archive, security or archive.rstrip("/") + "-security"


def recipe_hash(release, archive, security):
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted(FILES.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(f"{release} {archive} {security}".encode())
    return digest.hexdigest()[:16]


def cloud_sources(release, archive, security):
    """apt sources as a Debian cloud image has them: main, updates and security."""
    return (
        f"Types: deb\nURIs: {archive}\nSuites: {release} {release}-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {release}-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def _configure_rootfs(root, release, archive, security):
    def chroot(script):
        subprocess.run(["chroot", str(root), "sh", "-ec", script], check=True)

    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(cloud_sources(release, archive, security))
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/lab").mkdir(exist_ok=True)
    shutil.copy(FILES / "lab-firstboot", root / "usr/local/sbin/lab-firstboot")
    os.chmod(root / "usr/local/sbin/lab-firstboot", 0o755)  # noqa: S103  (an executable)
    shutil.copy(FILES / "lab-firstboot.service", root / "etc/systemd/system/")
    chroot(
        "systemctl enable lab-firstboot.service\n"
        f"useradd --create-home --shell /bin/bash {LAB_USER}\n"
        f"echo '{LAB_USER}:{LAB_PASSWORD}' | chpasswd\n"
        # As cloud-init writes it for the default user.
        f"echo '{LAB_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-cloud-init-users\n"
        "chmod 0440 /etc/sudoers.d/90-cloud-init-users\n"
        "apt-get clean\n"
        "rm -rf /var/lib/apt/lists/*\n"
    )
    # Every container generates its own machine id at boot, as a cloud instance does.
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)


def build(client, release, log=print, force=False):
    archive, security = apt_archives()
    recipe = recipe_hash(release, archive, security)
    tag = image_tag(release)
    for image in client.images.list(name=IMAGE_REPO):
        if tag in image.tags and image.labels.get(RECIPE_LABEL) == recipe and not force:
            log(f"lab: image {tag} is current")
            return tag
    log(f"lab: building {tag} from {archive}")
    with tempfile.TemporaryDirectory(prefix="bulwark-lab-") as tmp:
        root = Path(tmp, "rootfs")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", release, str(root), archive],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _configure_rootfs(root, release, archive, security)
        tarball = io.BytesIO()
        with tarfile.open(fileobj=tarball, mode="w") as tar:
            tar.add(root, arcname=".")
        tarball.seek(0)
        changes = [
            'CMD ["/sbin/init"]',
            "ENV container=docker",
            f"LABEL {RECIPE_LABEL}={recipe}",
        ]
        client.api.import_image_from_data(
            tarball.getvalue(), repository=IMAGE_REPO, tag=release, changes=changes
        )
    log(f"lab: built {tag}")
    return tag


def build_all(client, releases=tuple(RELEASES), log=print, force=False):
    return [build(client, release, log=log, force=force) for release in releases]
