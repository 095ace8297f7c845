"""SSH host keys on the host: a new key pair generated aside, then written in place as any file is."""

import os

from . import files
from .sandbox import Sandbox


def regenerate_host_key(runner, keygen, path, kind, bits):
    """Replace the host key at path (and path.pub) by a new `kind` key of `bits` bits.

    ssh-keygen writes into a private directory beside the key (the secret never leaves its filesystem);
    both files are then written by files.write: mode and owner before the rename, fsync, and never through
    a link at path. The private half goes first: a run cut in between leaves the old, short public key,
    which the next run reads (ssh-keygen -lf) and so regenerates the pair.
    """
    with Sandbox(".bulwark-keygen-", parent=os.path.dirname(path)) as box:
        runner.run(
            [keygen, "-q", "-t", kind, "-b", str(bits), "-N", "", "-C", "", "-f", box.path("key")],
            check=True,
            what="ssh-keygen",
        )
        private, public = box.read("key", binary=True), box.read("key.pub", binary=True)
        if not private or not public:
            raise files.HostError(f"ssh-keygen left no {kind} key pair for {path}")
        files.write(path, private, 0o600)
        files.write(path + ".pub", public, 0o644)
