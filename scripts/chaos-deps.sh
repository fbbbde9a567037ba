#!/usr/bin/env bash
# Makes sure what the chaos suite needs is here: Go modules (nats-server is
# built from them) and PostgreSQL's server binaries (initdb, postgres), for
# the throwaway cluster the suite makes and breaks on a port of its own. It
# starts no server: the suite never uses the machine's own PostgreSQL.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

go mod download

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  log "PostgreSQL's server binaries are not installed; installing them from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  log "running as root, and there is no postgres user for initdb to run as (it refuses root)"
  exit 1
fi
log "PostgreSQL server binaries: $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
