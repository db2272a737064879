#!/usr/bin/env bash
# make test-pythons: the tests that need no lab (-m "not lab") again under the oldest and the
# newest Python vpcmesh supports that this machine has: Debian 12's own /usr/bin/python3
# (3.11.2, the floor in pyproject.toml), and the newest python3.x found on PATH or under
# ~/.pyenv. Each gets a virtualenv of its own (.venv-<version>); a missing interpreter is
# said, not failed. The lab tests (real OpenVPN in namespaces, 20 minutes) test OpenVPN and
# the kernel as much as vpcmesh, and those do not change with the Python; `make fresh-check`
# runs all of them under a fresh Debian 12's own Python, and PYTEST_ARGS= runs them here.
set -euo pipefail
cd "$(dirname "$0")/.."

version_of() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null; }

newest=""
newest_version=""
for candidate in $(compgen -c python3. | sort -u) "$HOME"/.pyenv/versions/3.*/bin/python3; do
  path=$(command -v "$candidate" 2>/dev/null || true)
  [ -n "$path" ] && [ -x "$path" ] || continue
  v=$(version_of "$path") || continue
  if [ -z "$newest_version" ] || [ "$(printf '%s\n%s\n' "$newest_version" "$v" | sort -V | tail -n 1)" = "$v" ]; then
    newest=$path
    newest_version=$v
  fi
done

interpreters=()
[ -x /usr/bin/python3 ] && interpreters+=(/usr/bin/python3) || echo "test-pythons: no /usr/bin/python3 here" >&2
[ -n "$newest" ] && interpreters+=("$newest")

status=0
for python in "${interpreters[@]}"; do
  v=$(version_of "$python")
  venv=".venv-$v"
  echo "test-pythons: $python ($v)" >&2
  if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    scripts/install-system-deps.sh
  fi
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -e '.[dev]'
    echo "$want" >"$venv/.installed"
  fi
  # shellcheck disable=SC2086  # PYTEST_ARGS is word-split on purpose
  "$venv/bin/pytest" -q -p no:cacheprovider ${PYTEST_ARGS--m "not lab"} || status=1
done
exit $status
