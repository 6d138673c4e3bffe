#!/usr/bin/env bash
# Make sure the MariaDB and PostgreSQL server binaries used by tests/dbservers.py,
# and the headless Chromium with its driver used by the web UI's tests
# (tests/browser.py), are installed (Debian/Ubuntu).  Idempotent: does nothing when both are present.
# Only installs packages; never starts the system services (tests/dbservers.py
# runs its own throwaway servers).
set -euo pipefail

PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"

have_mariadb() {
    { command -v mariadbd || command -v mysqld; } >/dev/null 2>&1 &&
        { command -v mariadb-install-db || command -v mysql_install_db; } >/dev/null 2>&1 &&
        { command -v mariadb || command -v mysql; } >/dev/null 2>&1
}

have_postgres() {
    local bin
    for bin in /usr/lib/postgresql/*/bin; do
        [[ -x "$bin/postgres" && -x "$bin/initdb" && -x "$bin/psql" ]] && return 0
    done
    command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 &&
        command -v psql >/dev/null 2>&1
}

describe() {
    local pg
    pg=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    echo "MariaDB: $(command -v mariadbd || command -v mysqld);" \
        "PostgreSQL: ${pg:-$(dirname "$(command -v initdb)")};" \
        "Chromium: $(command -v chromium || command -v chromium-browser)"
}

missing=()
have_mariadb || missing+=(mariadb-server mariadb-client)
have_postgres || missing+=(postgresql)
have_chromium() {
    { command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 &&
        { command -v chromedriver || [[ -x /usr/lib/chromium/chromedriver ]]; } >/dev/null 2>&1
}
have_chromium || missing+=(chromium chromium-driver)

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install_test_servers: already installed -- $(describe)"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "install_test_servers: missing ${missing[*]}; as root run:" \
        "apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

# The packages' maintainer scripts would start the system services; forbid that
# with a temporary policy-rc.d (exit 101 = "action not allowed") unless one
# already exists.  We only ever remove the file we created.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

if ! have_mariadb || ! have_postgres || ! have_chromium; then
    echo "install_test_servers: installed ${missing[*]} but server binaries are still missing" >&2
    exit 1
fi
echo "install_test_servers: installed ${missing[*]} -- $(describe)"
