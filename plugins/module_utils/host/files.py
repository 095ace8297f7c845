"""Files on the host: the one place the modules read and write them.

Every write, removal, change of mode or owner and new directory is made relative to a directory
descriptor reached from the root one component at a time (O_DIRECTORY, O_NOFOLLOW, dir_fd), never by a
path a non-root user could change between a check and the write:

- every directory on the way must be one only root can change: owned by root and writable by neither
  its group nor everyone (a sticky root-owned directory such as /tmp passes: a user may add entries
  there, not rename or remove root's). A directory another user could change is refused by name: its
  owner could swap what is below it for a symbolic link while the module works;
- above `anchor` a symbolic link is followed only if root owns it; from `anchor` down, and at the path
  itself, a link is refused by name;
- `owner` names the one account whose own directories these are (its home, its ~/.ssh; ANY_USER: the
  account that owns the anchor, such as a consumer's directory): the anchor and what is below it may
  belong to it. Files there are created relative to the descriptor (O_EXCL, O_NOFOLLOW), given their
  mode and owner by descriptor and renamed with dir_fd, so what the account does to its own directories
  never sends root's write anywhere else.

Writes are atomic: a temporary file in the target directory, mode and owner set on it, fsync, rename.
"""

import errno
import glob
import os
import stat

from . import accounts as _accounts


class HostError(Exception):
    """Something on the host refused or failed; the message names the path or the command."""


# owner=ANY_USER: the anchor may belong to whichever account owns it (the operator named the directory).
ANY_USER = "any user"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_LINK = object()  # _open_child found a symbolic link
_MAX_LINKS = 40  # as the kernel's own limit on links followed in one lookup
# The most an anchored read (a file in a place a user may own) takes into memory.
MAX_ANCHORED_READ = 1024 * 1024


def _trusted():
    """The owners a directory on the way may have: root, and this process's own user (unit tests)."""
    return {0, os.geteuid()}


def _user(uid):
    found = _accounts.user_by_uid(uid)
    return f"{found.name} (uid {uid})" if found else f"uid {uid}"


def _group(gid):
    found = _accounts.group_by_gid(gid)
    return f"{found.name} (gid {gid})" if found else f"gid {gid}"


def _check(fd, where, owners):
    """Refuse directory `where` (open as fd) if a user other than root (and `owners`) could change it."""
    info = os.fstat(fd)
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in owners:
        why = f"{where} belongs to {_user(info.st_uid)}, not root"
    elif info.st_mode & stat.S_ISVTX and info.st_uid in _trusted():
        return
    elif mode & stat.S_IWOTH:
        why = f"{where} is writable by every user (mode {mode:04o})"
    elif mode & stat.S_IWGRP:
        why = f"{where} is writable by group {_group(info.st_gid)} (mode {mode:04o})"
    else:
        return
    raise HostError(
        f"{why}: another user could swap what is in it for a symbolic link;"
        " refusing to read or write below it"
    )


def _is_link_at(dir_fd, name):
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _open_child(dir_fd, name, where, make_dirs, missing_ok):
    """fd of directory `name` in dir_fd, never through a link: _LINK for a link, None when missing and
    missing_ok; with make_dirs, a missing directory is made with exactly that mode."""
    made = False
    while True:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            if make_dirs is None or made:
                if missing_ok:
                    return None
                raise HostError(f"cannot open directory {where}: No such file or directory") from None
            try:
                os.mkdir(name, 0o700, dir_fd=dir_fd)
                made = True
            except FileExistsError:
                pass
            except OSError as exc:
                raise HostError(f"cannot create directory {where}: {exc.strerror}") from None
            continue
        except OSError as exc:
            # O_NOFOLLOW on a link: ELOOP, or ENOTDIR together with O_DIRECTORY.
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link_at(dir_fd, name):
                return _LINK
            raise HostError(f"cannot open directory {where}: {exc.strerror}") from None
        if made and os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, make_dirs)  # exactly the mode asked for, whatever the umask
        return fd


def _open_dir(path, anchor=None, make_dirs=None, owner=None, missing_ok=False):
    """(fd, real path) of directory `path`, walked from the root as the module docstring says; None
    when missing_ok and a directory on the way does not exist."""
    path = os.path.abspath(path)
    anchor = os.path.abspath(anchor or path)
    if path != anchor and not path.startswith(anchor.rstrip("/") + "/"):
        raise HostError(f"{path} is not below {anchor}")
    try:
        opened = _walk_to_anchor(anchor, make_dirs, missing_ok)
        if opened is None:
            return None
        return _walk_below_anchor(opened, path[len(anchor) :], owner, make_dirs, missing_ok)
    except OSError as exc:
        raise HostError(f"cannot open directory {path}: {exc.strerror}") from None


def _link_target(dir_fd, name, where, links, anchor):
    """The target of link `name` on the way to the anchor: only a link root (or this process's user)
    owns is followed, and no more than the kernel would."""
    link_owner = os.lstat(name, dir_fd=dir_fd).st_uid
    if link_owner not in _trusted():
        raise HostError(f"{where} is a symbolic link owned by {_user(link_owner)}: refusing to follow it")
    if links > _MAX_LINKS:
        raise HostError(f"cannot open directory {anchor}: too many levels of symbolic links")
    return os.readlink(name, dir_fd=dir_fd)


def _walk_to_anchor(anchor, make_dirs, missing_ok):
    """(fd, real path) of the anchor, walked from "/" following only trusted links, every directory
    above it one only root can change (the anchor itself is checked by the caller)."""
    trusted = _trusted()
    pending = [part for part in anchor.split("/") if part]
    above = []  # (fd, real path) of the directories above the current one, for a link's ".."
    fd, where, links = os.open("/", _DIR_FLAGS), "/", 0
    try:
        _check(fd, where, trusted)
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if above:
                    os.close(fd)
                    fd, where = above.pop()
                continue
            child_where = os.path.join(where, part)
            child = _open_child(fd, part, child_where, make_dirs, missing_ok)
            if child is None:
                return None
            if child is _LINK:
                links += 1
                target = _link_target(fd, part, child_where, links, anchor)
                if target.startswith("/"):
                    for above_fd, _where in above:
                        os.close(above_fd)
                    above = []
                    os.close(fd)
                    fd, where = os.open("/", _DIR_FLAGS), "/"
                pending[:0] = [part for part in target.split("/") if part]
                continue
            above.append((fd, where))
            fd, where = child, child_where
            if pending:
                _check(fd, where, trusted)
        opened, fd = fd, None
        return opened, where
    finally:
        for above_fd, _where in above:
            os.close(above_fd)
        if fd is not None:
            os.close(fd)


def _walk_below_anchor(opened, rest, owner, make_dirs, missing_ok):
    """From the anchor (opened: its fd, which this takes over, and real path) down `rest`, following no
    link at all, every directory one only root or `owner` can change: (fd, real path), or None when one
    is missing."""
    fd, where = opened
    try:
        if owner == ANY_USER:
            owner = os.fstat(fd).st_uid
        owners = _trusted() | ({owner} if owner is not None else set())
        _check(fd, where, owners)
        for part in [part for part in rest.split("/") if part]:
            child_where = os.path.join(where, part)
            child = _open_child(fd, part, child_where, make_dirs, missing_ok)
            if child is None:
                return None
            if child is _LINK:
                raise HostError(f"{child_where} is a symbolic link: refusing to write through it")
            os.close(fd)
            fd, where = child, child_where
            _check(fd, where, owners)
        opened, fd = fd, None
        return opened, where
    finally:
        if fd is not None:
            os.close(fd)


def open_dir(path, *, anchor=None, make_dirs=None, owner=None):
    """A descriptor on directory `path` (the caller closes it), reached from the root without following
    a link a non-root user could change, every directory on the way one that only root (or `owner`, from
    `anchor` down) can change; HostError naming the first that is not.

    anchor: the highest directory from which no link at all is followed (default: path itself).
    make_dirs: the mode of missing directories, made on the way (None: they must exist).
    owner: the uid (or ANY_USER) that may own the anchor and the directories below it.
    """
    return _open_dir(path, anchor, make_dirs, owner)[0]


def check_dir(path, *, anchor=None, owner=None):
    """Refuse, naming it, the first directory on the way to `path` (as far as it exists) that is a link
    where none may be or that a user other than root (or `owner`) could change: open_dir's refusals,
    before anything is changed."""
    opened = _open_dir(path, anchor, None, owner, missing_ok=True)
    if opened is not None:
        os.close(opened[0])


def _parent(path, anchor, make_dirs, owner, missing_ok=False):
    """(dir_fd, name) of path's directory, opened as open_dir does (anchor: path's directory by default);
    None when missing_ok and a directory on the way is missing."""
    directory, name = os.path.split(os.path.abspath(path))
    if not name:
        raise HostError(f"{path} names no file")
    opened = _open_dir(directory, anchor or directory, make_dirs, owner, missing_ok)
    return None if opened is None else (opened[0], name)


def read(path, binary=False, *, anchor=None, owner=None):
    """The file's content (str, or bytes with binary), or None when it does not exist.

    Without anchor, read by path (system files, /proc, /sys). With anchor (where a user owns a directory
    on the way, or the module is about to write there), read as write would: relative to a directory
    descriptor opened by open_dir; a link or anything but a regular file at path is refused by name.
    """
    if anchor is None:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HostError(f"cannot read {path}: {exc.strerror}") from None
        return data if binary else data.decode("utf-8", errors="surrogateescape")
    opened = _parent(path, anchor, None, owner, missing_ok=True)
    if opened is None:
        return None
    dir_fd, name = opened
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise HostError(f"{path} is a symbolic link: refusing to read through it") from None
        raise HostError(f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise HostError(f"{path} is not a regular file: refusing to read it")
        # A user's file may be huge (or sparse): never pull more than the cap into memory.
        if info.st_size > MAX_ANCHORED_READ:
            raise HostError(
                f"{path} is {info.st_size} bytes, more than {MAX_ANCHORED_READ}: refusing to read it"
            )
        data = handle.read(MAX_ANCHORED_READ + 1)
        if len(data) > MAX_ANCHORED_READ:  # it grew after the fstat
            raise HostError(f"{path} is more than {MAX_ANCHORED_READ} bytes: refusing to read it")
    return data if binary else data.decode("utf-8", errors="surrogateescape")


def _lstat(path, anchor, owner):
    """lstat of path itself (None if absent): by path, or with anchor relative to open_dir's descriptor."""
    try:
        if anchor is None:
            return os.lstat(path)
        opened = _parent(path, anchor, None, owner, missing_ok=True)
        if opened is None:
            return None
        dir_fd, name = opened
        try:
            return os.lstat(name, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostError(f"cannot read {path}: {exc.strerror}") from None


def mode_of(path, *, anchor=None, owner=None):
    """Permission bits of path (its own, not a link target's), or None when it does not exist
    (anchor, owner: as for read)."""
    info = _lstat(path, anchor, owner)
    return None if info is None else stat.S_IMODE(info.st_mode)


def status(path, *, anchor=None, owner=None):
    """(kind, mode, uid, gid) of path itself (kind: file, directory, link or other), or None if absent
    (anchor, owner: as for read)."""
    info = _lstat(path, anchor, owner)
    if info is None:
        return None
    if stat.S_ISLNK(info.st_mode):
        kind = "link"
    elif stat.S_ISDIR(info.st_mode):
        kind = "directory"
    elif stat.S_ISREG(info.st_mode):
        kind = "file"
    else:
        kind = "other"
    return kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def write(path, content, mode=0o600, uid=-1, gid=-1, *, anchor=None, make_dirs=None, owner=None, verify=None):
    """Replace path atomically with content (str or bytes), with exactly this mode and owner.

    The file is created relative to a descriptor on its directory (open_dir: anchor, make_dirs, owner),
    with O_EXCL and O_NOFOLLOW, given its mode and owner by descriptor, and renamed into place with
    dir_fd; a link at path is refused. anchor defaults to path's own directory. verify: called with the
    temporary file's path before the rename (e.g. `visudo -cf`); a HostError it raises leaves path
    untouched.
    """
    data = content.encode("utf-8", errors="surrogateescape") if isinstance(content, str) else content
    dir_fd, name = _parent(path, anchor, make_dirs, owner)
    tmp = f".{name}.bulwark-tmp"
    try:
        if _is_link_at(dir_fd, name):
            raise HostError(f"{path} is a symbolic link: refusing to write through it")
        try:
            os.unlink(tmp, dir_fd=dir_fd)  # left by a write that was killed
        except FileNotFoundError:
            pass
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
        )
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
                verify(os.path.join(os.path.dirname(os.path.abspath(path)), tmp))
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


def remove(path, *, anchor=None, owner=None):
    """Remove a file (or a link, never its target) relative to a descriptor on its directory (open_dir:
    anchor, owner); True if something was removed."""
    opened = _parent(path, anchor, None, owner, missing_ok=True)
    if opened is None:
        return False
    dir_fd, name = opened
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise HostError(f"cannot remove {path}: {exc.strerror}") from None
    finally:
        os.close(dir_fd)
    return True


def private_dir(path, mode=0o700):
    """Make sure path is a root-only directory (created with mode, tightened if it exists), not a link;
    missing directories above it are made 0755 (as os.makedirs would), every one on the way checked."""
    dir_fd, name = _parent(path, None, 0o755, None)
    try:
        fd = _open_child(dir_fd, name, path, mode, missing_ok=False)
        if fd is _LINK:
            raise HostError(f"{path} is a symbolic link: refusing to keep state in it")
        try:
            _check(fd, path, _trusted())
            if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
    except OSError as exc:
        raise HostError(f"cannot make {path} private: {exc.strerror}") from None
    finally:
        os.close(dir_fd)


def user_id(name):
    """The uid of a user name on this host, or None when there is no such user (host/accounts.py)."""
    found = _accounts.user(name)
    return None if found is None else found.uid


def accounts():
    """(name, uid, home) of every account this host knows (its passwd database, NSS included)."""
    return [(entry.name, entry.uid, entry.home) for entry in _accounts.users()]


def group_id(name):
    """The gid of a group name on this host, or None when there is no such group (host/accounts.py)."""
    found = _accounts.group(name)
    return None if found is None else found.gid


def _set_attributes_at(dir_fd, name, path, *, mode, uid, gid, directory):
    flags = _DIR_FLAGS if directory else _FILE_FLAGS
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        # O_NOFOLLOW on a link: ELOOP, or ENOTDIR together with O_DIRECTORY.
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link_at(dir_fd, name):
            raise HostError(f"{path} is a symbolic link: refusing to change it") from None
        raise HostError(f"cannot open {path}: {exc.strerror}") from None
    try:
        _apply_attributes(fd, path, mode, uid, gid)
    finally:
        os.close(fd)


def _apply_attributes(fd, path, mode, uid, gid):
    try:
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    except OSError as exc:
        raise HostError(f"cannot set the mode and owner of {path}: {exc.strerror}") from None


def set_attributes(path, mode, uid=-1, gid=-1, directory=False, *, anchor=None, owner=None):
    """Give an existing file (or directory) exactly this mode and owner, by a descriptor opened relative
    to its directory's (open_dir: anchor, owner), never through a symbolic link."""
    dir_fd, name = _parent(path, anchor, None, owner)
    try:
        _set_attributes_at(dir_fd, name, path, mode=mode, uid=uid, gid=gid, directory=directory)
    finally:
        os.close(dir_fd)


def _set_new_directory_attributes(dir_fd, name, path, *, mode, uid, gid):
    """Give the directory this process just made its mode and owner, after checking that the entry is
    still that directory: a user owning the parent could have swapped another one in since the mkdir."""
    fd = _open_child(dir_fd, name, path, None, missing_ok=False)
    if fd is _LINK:
        raise HostError(f"{path} is a symbolic link: refusing to change it")
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or os.listdir(fd):
            raise HostError(
                f"{path} was replaced by another directory (owner {_user(info.st_uid)}) right after it was "
                "created: refusing to change its mode and owner"
            )
        _apply_attributes(fd, path, mode, uid, gid)
    finally:
        os.close(fd)


def directory(path, mode, uid=-1, gid=-1, *, anchor=None, make_dirs=None, owner=None, only_new=False):
    """Make path a directory with exactly this mode and owner (created if missing), relative to a
    descriptor on its parent (open_dir: anchor, make_dirs, owner); never a link. only_new: an existing
    directory is kept as it is. True if it was created."""
    dir_fd, name = _parent(path, anchor, make_dirs, owner)
    try:
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
            created = True
        except FileExistsError:
            created = False
        except OSError as exc:
            raise HostError(f"cannot create directory {path}: {exc.strerror}") from None
        if created and only_new:
            _set_new_directory_attributes(dir_fd, name, path, mode=mode, uid=uid, gid=gid)
            return True
        if created or not only_new:
            _set_attributes_at(dir_fd, name, path, mode=mode, uid=uid, gid=gid, directory=True)
            return created
        kept = _open_child(dir_fd, name, path, None, missing_ok=False)
        if kept is _LINK:
            raise HostError(f"{path} is a symbolic link: refusing to change it")
        os.close(kept)
        return False
    finally:
        os.close(dir_fd)


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


def names(directory):
    """Sorted names of the entries of a directory (links not followed), or [] when it is missing or not a
    directory."""
    try:
        return sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise HostError(f"cannot list {directory}: {exc.strerror}") from None


def exists(path):
    """Whether something is at path (a link counts only when its target exists, as a service sees it)."""
    return os.path.exists(path)


def is_dir(path):
    """Whether path is a directory, or a link to one."""
    return os.path.isdir(path)


def is_file(path):
    """Whether path is a regular file, or a link to one (as a service that reads it sees it)."""
    return os.path.isfile(path)


def real_path(path):
    """The canonical path (every link resolved), or None when a component is missing or unreadable."""
    try:
        return os.path.realpath(path, strict=True)
    except OSError:
        return None


def matching(pattern):
    """The paths a shell-style pattern matches, sorted ([] when none)."""
    return sorted(glob.glob(pattern))


def runtime_dir(path, mode=0o755):
    """Make sure a runtime directory a tool needs exists (as the unit that runs the service would make
    it, e.g. /run/sshd for sshd -t); an existing one is left as it is. True if it was made."""
    if os.path.isdir(path):
        return False
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except OSError as exc:
        raise HostError(f"cannot create directory {path}: {exc.strerror}") from None
    return True


def set_kernel_value(path, value):
    """Write one value to the running kernel (a /proc/sys entry is an interface, not a file to replace)."""
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
