"""The firewall's rollback, pure: a POSIX shell script that puts back what ONE apply replaced or removed,
and nothing else.

The commit-confirm timer runs it when the controller does not confirm in time (the module runs it at once
when an apply step fails). Loading whole snapshots back would also delete what other owners added during
the confirm window (the rule Docker adds to its DOCKER chain when a container starts, a table podman
creates) and break what those rules serve. So each object the apply replaced or removed is put back on its
own, after the script has read the live state, which also makes it right whether the apply ran, ran in
part, or not at all:

- what bulwark owns (table inet bulwark; the BULWARK-* chains, the jumps to them, the built-in chains'
  policies) is set to the snapshot;
- a table the purge deleted comes back unless it is there (then the apply did not run, or its owner made it
  anew: an iptables-nft table gets its saved chains and rules beside the new owner's, by its handle);
- a rule the purge deleted comes back unless it is there, after the nearest of its former predecessors that
  still is, in iptables' own syntax (so what iptables-nft wrote comes back as it was);
- a policy the purge set to accept is set back.

Every path and every value read from the live ruleset (tables, chains, rule text) is shell-quoted here.
"""

import shlex

_HEADER = """\
#!/bin/sh
# Managed by bulwark.hardening (firewall module): the rollback of one apply. It puts back what the apply
# replaced or removed and leaves what other owners (Docker, fail2ban, podman, ...) added since; each part
# reads the live state first, so it is right whether the apply ran, ran in part, or not at all.
set -eu
umask 077

# count TOOL TABLE CHAIN LINE: how many times the chain holds the rule LINE, as `TOOL -S` prints it
count() { "$1" -t "$2" -S "$3" | grep -cxF -e "$4" || true; }

# readd TOOL RESTORE TABLE CHAIN N RULE [PREDECESSOR...]: unless the chain holds RULE N times already,
# insert it after the first of its former predecessors that is still there (first in the chain if none
# is). RULE and PREDECESSORs are `-S` lines without their "-A CHAIN ".
readd() {
  tool=$1 restore=$2 table=$3 chain=$4 n=$5 rule=$6
  shift 6
  [ "$(count "$tool" "$table" "$chain" "-A $chain $rule")" -ge "$n" ] && return 0
  pos=1
  for pred in "$@"; do
    # line 1 of `-S CHAIN` is its policy, so the predecessor on line L is rule L-1: insert at L
    at=$("$tool" -t "$table" -S "$chain" | grep -nxF -e "-A $chain $pred" | tail -n 1 | cut -d: -f1)
    if [ -n "$at" ]; then
      pos=$at
      break
    fi
  done
  printf '*%s\\n-I %s %s %s\\nCOMMIT\\n' "$table" "$chain" "$pos" "$rule" | "$restore" --noflush
}

# unjump TOOL CHAIN TARGET: delete every jump from CHAIN to TARGET
unjump() { while "$1" -D "$2" -j "$3" 2>/dev/null; do :; done; }

# unchain TOOL CHAIN: flush and delete a chain of ours that the apply created
unchain() {
  if "$1" -S "$2" >/dev/null 2>&1; then
    "$1" -F "$2"
    "$1" -X "$2"
  fi
}

# handle NFT FAMILY TABLE: the table's handle, nothing when it does not exist
handle() { "$1" -a list table "$2" "$3" 2>/dev/null | sed -n '1s/.*# handle \\([0-9][0-9]*\\).*/\\1/p'; }
"""

q = shlex.quote


class Script:
    """The rollback of one apply: shell lines, and the files they read (path -> text, the snapshot)."""

    def __init__(self, state_dir, name):
        self.state_dir = state_dir
        self.name = name
        self.path = f"{state_dir}/{name}.sh"
        self.files = {}
        self.lines = []

    def file(self, suffix, text):
        """A snapshot file the script reads, written beside it before the rollback is armed."""
        path = f"{self.state_dir}/{self.name}.{suffix}"
        self.files[path] = text
        return path

    def comment(self, text):
        self.lines += ["", f"# {text}"]

    def run(self, *argv):
        self.lines.append(shlex.join(str(w) for w in argv))

    def text(self):
        return _HEADER + "\n".join(self.lines) + "\n"

    def snapshot(self):
        """path -> text of everything the rollback needs: the script and the files it reads."""
        return {**self.files, self.path: self.text()}

    def argv(self):
        return ["/bin/sh", self.path]

    # --- nftables ---------------------------------------------------------------------------------

    def nft_tables(self, nft, owned_script, deleted_tables):
        """One `nft -f` transaction: the owned table as it was (owned_script, always), and each native
        table the purge deleted [(family, name, saved text)] that is not there."""
        self.comment("table inet bulwark as it was, and each table the purge deleted that is not back")
        owned = self.file("nft", owned_script)
        tables = [
            (family, name, self.file(f"table{n}.nft", text))
            for n, (family, name, text) in enumerate(deleted_tables)
        ]
        # sh has no pipefail: a `cat` that fails below would feed nft less and the load would still succeed
        for path in [owned] + [path for _family, _name, path in tables]:
            self.lines.append(
                f"[ -r {q(path)} ] || {{ echo rollback snapshot missing: {q(path)} >&2; exit 1; }}"
            )
        self.lines += ["{", f"  cat {q(owned)}"]
        for family, name, path in tables:
            probe = shlex.join([nft, "list", "table", family, name])
            self.lines.append(f"  {probe} >/dev/null 2>&1 || cat {q(path)}")
        self.lines.append(f"}} | {q(nft)} -f /dev/stdin")

    def iptables_nft_table(self, nft, restore, table, handle, saved):
        """An iptables-nft table the purge deleted whole: back whole when it is gone, its saved chains and
        rules beside the new owner's when someone made it anew (another handle), nothing when it is still
        the table the apply found (the same handle: the apply did not run). table: (family, name)."""
        family, name = table
        path = self.file(f"{family}-{name}.save", saved)
        self.comment(f"table {family} {name} (iptables-nft), which the purge deleted")
        self.lines += [
            f'case "$(handle {shlex.join([nft, family, name])})" in',
            f'  "") {shlex.join([restore, path])} ;;',
            f"  {int(handle)}) ;;" if handle is not None else "  *) ;;  # its handle was not read: leave it",
            f"  *) {shlex.join([restore, '--noflush', path])} ;;",
            "esac",
        ]

    def nft_policy(self, nft, family, table, chain, policy):
        """A base chain's policy as it was, if the chain is there."""
        probe = shlex.join([nft, "list", "chain", family, table, chain])
        fix = shlex.join([nft, f"chain {family} {table} {chain} {{ policy {policy}; }}"])
        # not `probe && fix`: a false probe on the script's last line would be its exit status (a failure)
        self.lines.append(f"if {probe} >/dev/null 2>&1; then {fix}; fi")

    # --- iptables ---------------------------------------------------------------------------------

    def readd(self, tools, table, chain, rules, index):
        """Rule rules[index] of a chain as saved ("CHAIN spec" lines, in order), back where it was.
        tools: the iptables command that lists the chain and its -restore."""
        tool, restore = tools
        spec = rules[index].split(" ", 1)[1]
        n = rules[: index + 1].count(rules[index])
        preds = [r.split(" ", 1)[1] for r in reversed(rules[:index])]
        self.run("readd", tool, restore, table, chain, n, spec, *preds)
