#!/usr/bin/env bash
# Runs the README's two commands on a fresh Debian 12: a root made by
# debootstrap (bookworm, minbase) plus the host's Node 20 and npm and nothing
# else from this machine, a clone of one commit of this repository, then
# `npm start -- --seconds N` and `npm test` in a chroot. It proves the install
# steps (setup.mjs, the npm and Debian packages, the kernel build), not the
# units: a chroot runs no systemd or udev. Slow: a cold kernel build inside
# takes 12 minutes or more. Needs root.
#
#   scripts/fresh-check.sh [--commit REV] [--seconds N] [--keep] [--log FILE]
#
# The debootstrap result is cached as a tarball under ~/.cache/iopf-relay/,
# keyed by what went into it; the root is unpacked fresh every run. Exits 0
# when both commands succeed; the summary at the end says what ran, how long,
# and the suite's `tests:` line.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && git rev-parse --show-toplevel)
commit=HEAD
seconds=20
keep=no
log=""
while [ $# -gt 0 ]; do
  case "$1" in
    --commit) commit=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    --log) log=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh-check: unknown argument \"$1\"; see --help" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "fresh-check: needs root (debootstrap, chroot and mounts); run it with sudo" >&2
  exit 1
fi
if [ -n "$log" ]; then
  exec > >(tee "$log") 2>&1
fi

sha=$(git -C "$repo" rev-parse --verify "$commit^{commit}")
suite=bookworm
variant=minbase
arch=$(dpkg --print-architecture)
started=$(date +%s)
summary=()
note() { echo "fresh-check: $*"; }
stamp() { date -u +%H:%M:%S; }

# The mirror this machine's apt uses (deb.debian.org by default), main and security.
sources_uri() {
  local want=$1 found=""
  found=$(awk -v want="$want" '
    /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want) print uri }
    /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { u = $i; if ($(i + 1) == want) print u; break } }
  ' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)
  echo "${found:-$2}"
}
mirror=$(sources_uri "$suite" http://deb.debian.org/debian)
security=$(sources_uri "$suite-security" http://deb.debian.org/debian-security)

if ! command -v debootstrap >/dev/null; then
  note "installing debootstrap on this host"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap
fi

cache=${XDG_CACHE_HOME:-$HOME/.cache}/iopf-relay
mkdir -p "$cache"
key=$(printf '%s\n' "$suite" "$variant" "$arch" "$mirror" "$security" "$(dpkg-query -W -f='${Version}' debootstrap)" | sha256sum | cut -c1-16)
base="$cache/fresh-root-$suite-$variant-$key.tar"
if [ ! -s "$base" ]; then
  t0=$(date +%s)
  build=$(mktemp -d /var/tmp/iopf-fresh-base.XXXXXX)
  note "$(stamp) debootstrap $suite ($variant) from $mirror into $build"
  debootstrap --variant="$variant" --arch="$arch" "$suite" "$build" "$mirror"
  # A Debian 12 install's sources: the release, its updates and security.
  cat > "$build/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -f "$build/etc/apt/sources.list"
  tar -C "$build" -cf "$base.tmp" .
  mv "$base.tmp" "$base"
  rm -rf "$build"
  summary+=("debootstrap base: built and cached in $(( $(date +%s) - t0 )) s ($base)")
else
  summary+=("debootstrap base: cached ($base)")
fi

root=$(mktemp -d /var/tmp/iopf-fresh.XXXXXX)
cleanup() {
  local code=$?
  # Whatever the run left inside the root (a QEMU, a browser) goes first, then the mounts.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  umount -R "$root" 2>/dev/null || umount -R -l "$root" 2>/dev/null || true
  if [ "$keep" = yes ]; then note "kept the root at $root"; else rm -rf --one-file-system "$root"; fi
  exit "$code"
}
trap cleanup EXIT
tar -C "$root" -xpf "$base"
# mktemp makes the directory 0700 (and the tarball's "./" carries that mode): as /,
# it would stop every user but root at the first path lookup.
chmod 0755 "$root"

# Node 20 and npm, from where this host's `node` and `npm` resolve.
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
install -D -m 755 "$node_bin" "$root/usr/bin/node"
mkdir -p "$root/usr/lib/node_modules"
cp -a "$npm_dir" "$root/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
# Network setup only: name resolution, and the CA this host's Node trusts for
# its egress (NODE_EXTRA_CA_CERTS), without which npm cannot reach its registry here.
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
env_extra=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  install -D -m 644 "$NODE_EXTRA_CA_CERTS" "$root/etc/fresh-check/node-extra-ca.crt"
  env_extra=(NODE_EXTRA_CA_CERTS=/etc/fresh-check/node-extra-ca.crt)
fi
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -n "${!v:-}" ] && env_extra+=("$v=${!v}")
done

git clone --quiet --no-local "$repo" "$root/root/iopf-relay"
git -C "$root/root/iopf-relay" checkout --quiet --detach "$sha"
note "commit $(git -C "$repo" log -1 --format='%h %s' "$sha")"

# The root is a mount point of its own, as / is on a real machine: tools
# that make their mount namespace private (unshare -m, used by the udev rule
# test) refuse a chroot whose / is not one.
mount --bind "$root" "$root" && mount --make-private "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
chmod 1777 "$root/tmp"

inside() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI=true \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${env_extra[@]}" \
    /bin/bash -c "cd /root/iopf-relay && $1"
}

note "node $(inside 'node --version'), npm $(inside 'npm --version') in the root; nothing else beyond debootstrap's $variant"

failed=0
step() {
  local title=$1 command=$2 t0 code out
  t0=$(date +%s)
  note "$(stamp) running: $command"
  out=$(mktemp)
  set +e
  inside "$command" 2>&1 | tee "$out"
  code=${PIPESTATUS[0]}
  set -e
  local line
  line=$(grep -E '^tests: [0-9]+ passed' "$out" | tail -n 1 || true)
  rm -f "$out"
  summary+=("$title: \`$command\` exit $code after $(( $(date +%s) - t0 )) s${line:+; $line}")
  [ "$code" = 0 ] || failed=1
}
step "npm start" "npm start -- --seconds $seconds"
step "npm test" "npm test"

echo
echo "=== fresh-check summary: $(git -C "$repo" log -1 --format='%h %s' "$sha")"
echo "root: debootstrap $suite $variant ($arch) from $mirror, node $(inside 'node --version') copied from $node_bin, npm from $npm_dir"
for s in "${summary[@]}"; do echo "- $s"; done
echo "total: $(( $(date +%s) - started )) s; $([ "$failed" = 0 ] && echo PASSED || echo FAILED)"
exit "$failed"
