"""Files on the host: the one place the modules read and write them.

Writes are atomic (a temporary file in the target directory, mode and owner set on it, fsync, rename)
and never go through a symbolic link: a link where a file or a directory below `anchor` should be
is refused by name, because writing (and chowning) through it would change a file somebody else chose.
"""

import errno
import grp
import os
import pwd
import stat


class HostError(Exception):
    """Something on the host refused or failed; the message names the path or the command."""


def read(path, binary=False):
    """The file's content (str, or bytes with binary), or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostError(f"cannot read {path}: {exc.strerror}") from None
    return data if binary else data.decode("utf-8", errors="surrogateescape")


def mode_of(path):
    """Permission bits of path (its own, not a link target's), or None when it does not exist."""
    try:
        return stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None


def _open_dir(path, anchor, create_mode):
    """A descriptor on directory `path`; no component below `anchor` may be a symbolic link.

    With create_mode, missing directories below the anchor are created with that mode.
    """
    path = os.path.abspath(path)
    anchor = os.path.abspath(anchor or path)
    if path != anchor and not path.startswith(anchor.rstrip("/") + "/"):
        raise HostError(f"{path} is not below {anchor}")
    if create_mode is not None and path == anchor:
        os.makedirs(anchor, mode=create_mode, exist_ok=True)
    try:
        fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise HostError(f"cannot open directory {anchor}: {exc.strerror}") from None
    walked = anchor
    for part in [p for p in path[len(anchor) :].split("/") if p]:
        walked = os.path.join(walked, part)
        try:
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if create_mode is None:
                    raise
                os.mkdir(part, create_mode, dir_fd=fd)
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(walked):
                raise HostError(f"{walked} is a symbolic link: refusing to write through it") from None
            raise HostError(f"cannot open directory {walked}: {exc.strerror}") from None
        os.close(fd)
        fd = child
    return fd


def write(path, content, mode=0o600, uid=-1, gid=-1, *, anchor=None, make_dirs=None, verify=None):
    """Replace path atomically with content (str or bytes), with exactly this mode and owner.

    anchor: the highest directory trusted as it is; every directory below it on the way to path, and
    path itself, must not be a symbolic link (default: path's own directory). make_dirs: the mode for
    missing directories below the anchor (None: they must exist). verify: called with the temporary
    file's path before the rename (e.g. `visudo -cf`); a HostError it raises leaves path untouched.
    """
    data = content.encode("utf-8", errors="surrogateescape") if isinstance(content, str) else content
    directory, name = os.path.split(os.path.abspath(path))
    dir_fd = _open_dir(directory, anchor or directory, make_dirs)
    tmp = f".{name}.bulwark-tmp"
    try:
        try:
            if stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
                raise HostError(f"{path} is a symbolic link: refusing to write through it")
        except FileNotFoundError:
            pass
        try:
            os.unlink(tmp, dir_fd=dir_fd)  # left by a write that was killed
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dir_fd)
        try:
            os.fchmod(fd, mode)
            if uid != -1 or gid != -1:
                os.fchown(fd, uid, gid)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if verify is not None:
            try:
                verify(os.path.join(directory, tmp))
            except HostError:
                os.unlink(tmp, dir_fd=dir_fd)
                raise
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    except OSError as exc:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise HostError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        os.close(dir_fd)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def remove(path):
    """Remove a file (or a link, never its target); True if something was removed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise HostError(f"cannot remove {path}: {exc.strerror}") from None
    return True


def private_dir(path, mode=0o700):
    """Make sure path is a root-only directory (created with mode, tightened if it exists), not a link."""
    if os.path.islink(path):
        raise HostError(f"{path} is a symbolic link: refusing to keep state in it")
    os.makedirs(path, mode=mode, exist_ok=True)
    if mode_of(path) != mode:
        os.chmod(path, mode)


def status(path):
    """(kind, mode, uid, gid) of path itself (kind: file, directory, link or other), or None if absent."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostError(f"cannot read {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        kind = "link"
    elif stat.S_ISDIR(info.st_mode):
        kind = "directory"
    elif stat.S_ISREG(info.st_mode):
        kind = "file"
    else:
        kind = "other"
    return kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def user_id(name):
    """The uid of a user name on this host, or None when there is no such user."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def accounts():
    """(name, uid, home) of every account this host knows (its passwd database, NSS included)."""
    return [(entry.pw_name, entry.pw_uid, entry.pw_dir) for entry in pwd.getpwall()]


def group_id(name):
    """The gid of a group name on this host, or None when there is no such group."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def set_attributes(path, mode, uid=-1, gid=-1, directory=False):
    """Give an existing file (or directory) exactly this mode and owner, never through a symbolic link."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if directory else os.O_NONBLOCK)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        # O_NOFOLLOW on a link: ELOOP, or ENOTDIR together with O_DIRECTORY.
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise HostError(f"{path} is a symbolic link: refusing to change it") from None
        raise HostError(f"cannot open {path}: {exc.strerror}") from None
    try:
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    except OSError as exc:
        raise HostError(f"cannot set the mode and owner of {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def directory(path, mode, uid=-1, gid=-1):
    """Make path a directory with exactly this mode and owner (created if missing); never a link."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise HostError(f"cannot create directory {path}: {exc.strerror}") from None
    set_attributes(path, mode, uid, gid, directory=True)


def modified(path):
    """The modification time (seconds) of path, or None when it does not exist."""
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def listing(paths, skip=()):
    """[(path, size, mtime_ns)] of each existing file in paths, and of the files directly in each
    directory of paths (not below; names in skip left out): a cheap fingerprint of their state."""
    found = []
    for path in paths:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode):
            found.append((path, info.st_size, info.st_mtime_ns))
            continue
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name not in skip and entry.is_file(follow_symlinks=False):
                    entry_info = entry.stat(follow_symlinks=False)
                    found.append((entry.path, entry_info.st_size, entry_info.st_mtime_ns))
    return found


def set_kernel_value(path, value):
    """Write one value to the running kernel (a /proc/sys entry is an interface, not a file to replace)."""
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
