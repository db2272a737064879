#!/usr/bin/env bash
# Prints the Debian mirror this host's apt sources name (a mirror or proxy of its own),
# else Debian's: what debootstrap should fetch from here.
mirror=$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\)\/*[[:space:]]*$/\1/p' \
  /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /^http/ {print $2; exit}' \
  /etc/apt/sources.list 2>/dev/null || true)
echo "${mirror:-http://deb.debian.org/debian}"
