#!/usr/bin/env bash
# Runs the provisioner on this machine against the local PostgreSQL and NATS
# (JetStream) servers: creates the database "jitprov" if needed, migrates
# it, applies examples/organizations.yaml and serves until Ctrl-C.
# JITPROV_DATABASE_URL and JITPROV_NATS_URL point it elsewhere.
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

mkdir -p bin
go build -o bin/ ./cmd/provisioner ./cmd/jitprov-login
bin/provisioner migrate
bin/provisioner apply -f examples/organizations.yaml
log "provisioner starting; in another shell try: bin/jitprov-login -org acme -connection okta -id alice -email alice@acme.example"
exec bin/provisioner serve
