#!/bin/sh
# Ages a hardened lab host into the state operators have it in a day later (make bench's aged host, and
# molecule/harden's no-change run), as root on the host:
# - a pending update that no upgrade applies: bulwark-bench-dummy 1.0 installed and held, 2.0 in a local
#   repository built here with dpkg-deb (no network, no mirror);
# - package lists (and apt's periodic stamps) two days old, as apt leaves them when a refresh finds nothing
#   new. baseline_packages' own record of its last refresh (/var/lib/bulwark/apt-refresh.stamp) is left
#   as it is.
# With the argument "due", the record is aged too (two hours): the host as it is once the window (an hour)
# has passed since the last refresh, when one refresh is due.
# A second run only ages the lists (and the record) again.
set -eu
# The hardened host's umask (027) would give the package's control directory modes dpkg-deb refuses.
umask 022
name=bulwark-bench-dummy
repo=/var/local/bulwark-bench-repo
list=/etc/apt/sources.list.d/bulwark-bench.list
if [ ! -e "$list" ]; then
  mkdir -p "$repo"
  for version in 1.0 2.0; do
    root=$(mktemp -d)
    mkdir "$root/DEBIAN"
    printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: bulwark bench <bench@example.invalid>\n' \
      "$name" "$version" >"$root/DEBIAN/control"
    printf 'Description: an installed package with a pending (held) update\n' >>"$root/DEBIAN/control"
    dpkg-deb --root-owner-group --build "$root" "$repo/${name}_${version}_all.deb" >/dev/null
    rm -rf "$root"
  done
  DEBIAN_FRONTEND=noninteractive dpkg --install "$repo/${name}_1.0_all.deb" >/dev/null
  apt-mark hold "$name" >/dev/null
  deb="$repo/${name}_2.0_all.deb"
  {
    dpkg-deb --field "$deb"
    printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "${deb##*/}" "$(stat -c %s "$deb")" \
      "$(sha256sum "$deb" | cut -d ' ' -f 1)"
  } >"$repo/Packages"
  echo "deb [trusted=yes] file:$repo ./" >"$list"
  # This source only (offline), and the other sources' lists kept.
  apt-get update -qq -o Dir::Etc::sourcelist="$list" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0
fi
find /var/lib/apt/lists /var/lib/apt/periodic -maxdepth 1 -exec touch -d '2 days ago' {} + 2>/dev/null || true
if [ "${1:-}" = due ]; then
  touch -d '2 hours ago' /var/lib/bulwark/apt-refresh.stamp
fi
