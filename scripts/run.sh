#!/usr/bin/env bash
# Runs jitprov on this machine against the local PostgreSQL and NATS
# (JetStream) servers: creates the database "jitprov" if needed, migrates
# it, applies examples/organizations.yaml, and serves the provisioner and
# sso-edge (http://localhost:8080, development keys made in .data/) until
# Ctrl-C. JITPROV_DATABASE_URL and JITPROV_NATS_URL point it elsewhere.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

if [ -z "${JITPROV_DATABASE_URL:-}" ]; then
  ensure_postgres
  if ! psql -h 127.0.0.1 -U postgres -Atc "select 1 from pg_database where datname = 'jitprov'" | grep -q 1; then
    log "creating database jitprov"
    psql -h 127.0.0.1 -U postgres -qc 'create database jitprov'
  fi
  export JITPROV_DATABASE_URL="postgres://postgres@127.0.0.1:5432/jitprov?sslmode=disable"
fi
export JITPROV_NATS_URL="${JITPROV_NATS_URL:-nats://127.0.0.1:4222}"
export JITPROV_LOG_FORMAT="${JITPROV_LOG_FORMAT:-text}"

mkdir -p bin .data
go build -o bin/ ./cmd/provisioner ./cmd/sso-edge ./cmd/jitprov-login
bin/provisioner migrate
bin/provisioner apply -f examples/organizations.yaml

# Development secrets, made once and kept in .data/ (git-ignored).
[ -s .data/session-keys ] || openssl rand -hex 32 > .data/session-keys
if [ ! -s .data/sp.key ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=jitprov-dev-sp" \
    -keyout .data/sp.key -out .data/sp.crt 2>/dev/null
fi
export JITPROV_SESSION_KEYS_FILE=.data/session-keys JITPROV_EDGE_SP_KEY_FILE=.data/sp.key JITPROV_EDGE_SP_CERT_FILE=.data/sp.crt
export JITPROV_EDGE_PUBLIC_URL="${JITPROV_EDGE_PUBLIC_URL:-http://localhost:8080}" JITPROV_EDGE_INSECURE_COOKIES=true

bin/provisioner serve &
provisioner=$!
trap 'kill "$provisioner" 2>/dev/null; wait "$provisioner" 2>/dev/null' EXIT
log "sso-edge on $JITPROV_EDGE_PUBLIC_URL (try $JITPROV_EDGE_PUBLIC_URL/login); in another shell:"
log "  bin/jitprov-login -org acme -connection okta -id alice -email alice@acme.example"
bin/sso-edge
