#!/usr/bin/env bash
# make fresh-check: the README's two commands on a truly fresh Debian 12.
#
# debootstraps a Debian 12 "minbase" root (make, git, python3 and CA certificates, nothing
# more) into a temporary folder, carries in this machine's CA bundle and package-index
# settings when it has them, clones this repository at HEAD into it, and runs exactly
# `make render` and `make test` there, as root, with CI=true (so a missing part fails rather
# than skips). Everything runs in a private mount namespace: whatever happens, the mounts end
# with it, and the folder is removed on every exit path.
set -euo pipefail

SUITE=${FRESH_SUITE:-bookworm}
KEEP=${FRESH_KEEP:-}  # set to keep the root for a look after a failure
CACHE=/var/cache/vpcmesh-fresh-check  # downloaded .debs only: apt verifies them again

say() { printf 'fresh-check: %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "needs root (debootstrap, chroot, mounts)"; exit 2; }
command -v apt-get >/dev/null || { say "needs a Debian-like host (apt-get)"; exit 2; }
repo=$(git rev-parse --show-toplevel)
head=$(git -C "$repo" rev-parse --short HEAD)
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

mirror=$("$(dirname "$0")/debian-mirror.sh")

work=$(mktemp -d /var/tmp/vpcmesh-fresh.XXXXXX)
root=$work/root
cleanup() {
  local code=$?
  if [ -n "$KEEP" ] && [ "$code" -ne 0 ]; then
    say "kept $root (FRESH_KEEP is set)"
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
mkdir -p "$CACHE/debs"
cache_opt=()
debootstrap --help 2>&1 | grep -q -- '--cache-dir' && cache_opt=(--cache-dir="$CACHE/debs")
say "debootstrap $SUITE minbase from $mirror"
debootstrap --variant=minbase --include=make,git,python3,ca-certificates "${cache_opt[@]}" \
  "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2; say "debootstrap failed"; exit 1; }
say "root ready in $((SECONDS - started)) s"

# What this machine needs to reach the registries: its CA bundle, pip and apt settings.
[ -f /etc/ssl/certs/ca-certificates.crt ] &&
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"
[ -f "$HOME/.config/pip/pip.conf" ] && mkdir -p "$root/root/.config/pip" &&
  cp "$HOME/.config/pip/pip.conf" "$root/root/.config/pip/pip.conf"
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] && cp "$f" "$root/etc/apt/sources.list.d/"
done
if ls "$root"/etc/apt/sources.list.d/* >/dev/null 2>&1; then
  : >"$root/etc/apt/sources.list"  # the carried sources replace debootstrap's one line
fi
for f in /etc/apt/apt.conf.d/*; do
  [ -f "$f" ] && grep -q '^Acquire::' "$f" && cp "$f" "$root/etc/apt/apt.conf.d/"
done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

git clone -q "$repo" "$root/root/vpcmesh"
git -C "$root/root/vpcmesh" checkout -q "$head"

# The environment a user's shell would have, plus the host's pip and TLS settings.
envs=(HOME=/root LANG=C.UTF-8 CI=true DEBIAN_FRONTEND=noninteractive TERM=dumb
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
while IFS='=' read -r name value; do
  case "$name" in
    PIP_*|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|GIT_SSL_CAINFO|\
    NODE_EXTRA_CA_CERTS|*_proxy|*_PROXY) envs+=("$name=$value") ;;
  esac
done < <(env)

say "running 'make render' and 'make test' in the fresh root (HEAD $head)"
# A private mount namespace: /proc, /sys and /dev are mounted for the chroot only, and the
# root is a mount point of its own so that `ip netns` can mount there; all of it ends with
# the namespace, whatever the commands do.
set +e
unshare --mount --propagation private -- /bin/bash -euc '
  root=$1; shift
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount -t sysfs sys "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/run"
  exec chroot "$root" /usr/bin/env -i "$@" /bin/bash -ec \
    "cd /root/vpcmesh && make render && make test"
' fresh "$root" "${envs[@]}" 2>&1 | tee "$work/run.log" | sed -u 's/^/  | /'
code=${PIPESTATUS[0]}
set -e
elapsed=$((SECONDS - started))
summary=$(grep -E '^[0-9]+ (passed|failed)|[0-9]+ passed' "$work/run.log" | tail -n 1)
if [ "$code" -eq 0 ]; then
  say "passed on a fresh Debian 12 ($SUITE minbase) in $elapsed s: ${summary:-no summary}"
else
  say "FAILED (exit $code) on a fresh Debian 12 ($SUITE minbase) after $elapsed s"
  exit 1
fi
