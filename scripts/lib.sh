# Shared helpers for the scripts in this folder; source it.

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

# ensure_postgres makes a PostgreSQL server answer at 127.0.0.1:5432,
# installing it from Debian's packages and starting it when needed.
ensure_postgres() {
  if command -v pg_isready >/dev/null 2>&1 && pg_up; then return 0; fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "PostgreSQL is not installed; installing it from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
  if ! pg_up; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && return 0; sleep 1; done
  log "PostgreSQL does not answer at 127.0.0.1:5432"
  return 1
}
