#!/usr/bin/env bash
# Makes sure what the tests need is here: Go modules, and a PostgreSQL server
# that answers. JITPROV_TEST_DATABASE_URL, when set, names the server to use;
# otherwise the local one at 127.0.0.1:5432 is used, started (and installed
# from Debian's packages) if it does not answer. NATS needs nothing: tests
# embed a real nats-server.
set -euo pipefail

log() { printf 'test-deps: %s\n' "$*" >&2; }

go mod download

if [ -n "${JITPROV_TEST_DATABASE_URL:-}" ]; then
  log "using JITPROV_TEST_DATABASE_URL"
  exit 0
fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "PostgreSQL is not installed; installing it from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
  if ! pg_up; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! pg_up; then
  log "PostgreSQL does not answer at 127.0.0.1:5432; the database tests cannot run"
  exit 1
fi
# Tests connect as postgres over TCP without a password (trust auth, as on
# this kind of machine). Say clearly if that is not so.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  log "cannot connect as user postgres to 127.0.0.1:5432 without a password;"
  log "set JITPROV_TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/postgres (a role allowed to CREATE DATABASE)"
  exit 1
fi
log "PostgreSQL answers at 127.0.0.1:5432"
