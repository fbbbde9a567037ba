#!/usr/bin/env bash
# Makes sure what the tests need is here: Go modules, xmlsec1, SimpleSAMLphp
# with the PHP it runs on, Chromium, Node.js with the npm packages of the
# SCIM interop test and of the Node.js examples (examples/node), and a
# PostgreSQL server that answers. JITPROV_TEST_DATABASE_URL, when set,
# names the server to use; otherwise the local one at
# 127.0.0.1:5432 is used, started (and installed from Debian's packages) if
# it does not answer. NATS needs nothing but Debian's nats-server, an older
# release the version check is tested against: tests embed a real
# nats-server of go.mod's version.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

go mod download

# xmlsec1 is the independent XML-DSig signer the SAML tests sign with.
if ! command -v xmlsec1 >/dev/null 2>&1; then
  log "installing xmlsec1 from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq xmlsec1 >/dev/null
fi

# SimpleSAMLphp is the third-party SAML IdP of the interop tests
# (test/interop/simplesamlphp), which serve it with `php -S` themselves.
# Debian's simplesamlphp package does not bring the PHP extensions it needs
# (dom from php-xml, mbstring); its web-server dependency brings apache2,
# which the tests do not use.
ssp_ready() {
  command -v php >/dev/null 2>&1 &&
    [ -f /usr/share/simplesamlphp/www/saml2/idp/SSOService.php ] &&
    php -m 2>/dev/null | grep -qx dom &&
    php -m 2>/dev/null | grep -qx mbstring
}
if ! ssp_ready; then
  log "installing SimpleSAMLphp and PHP from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq simplesamlphp php-cli php-xml php-mbstring >/dev/null
fi

# Debian's nats-server (2.9) is the server too old for jitprov that
# internal/bus's version check is tested against.
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  log "installing nats-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nats-server >/dev/null
fi

# Chromium is the real browser the tour test (cmd/jitprov) drives through
# the DevTools protocol (chromedp); Debian's package, run headless.
if ! command -v chromium >/dev/null 2>&1; then
  log "installing Chromium from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

# Node.js runs scimmy, the independent SCIM client of the interop test
# test/interop/scimmy, and the Node.js examples; their packages are pinned
# in each folder's package-lock.json and installed from the npm registry.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "installing Node.js and npm from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
(cd "$(dirname "$0")/../test/interop/scimmy" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
# The Node.js examples of the event contract (examples/node: nats.js v3 and
# the CloudEvents JavaScript SDK), which test/interop/node runs against
# `jitprov dev`; pinned in their package-lock.json.
npm ci --ignore-scripts --prefix "$(dirname "$0")/../examples/node" --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null

if [ -n "${JITPROV_TEST_DATABASE_URL:-}" ]; then
  log "using JITPROV_TEST_DATABASE_URL"
  exit 0
fi
ensure_postgres
# Tests connect as postgres over TCP without a password (trust auth, as on
# this kind of machine). Say clearly if that is not so.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  log "cannot connect as user postgres to 127.0.0.1:5432 without a password;"
  log "set JITPROV_TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/postgres (a role allowed to CREATE DATABASE)"
  exit 1
fi
log "PostgreSQL answers at 127.0.0.1:5432"
