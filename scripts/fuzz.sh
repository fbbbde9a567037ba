#!/usr/bin/env bash
# Runs every fuzz target of the module, one after the other, each for
# FUZZTIME (default 20s). The targets are found, not listed: every Fuzz*
# function that `go test -list` reports in PKGS (default ./...). Exits
# non-zero when any target fails; go test has then written the failing
# input to the package's testdata/fuzz/<Target>/, where it stays as a seed
# that `make test` runs: fix the bug, keep the file.
#
#   FUZZTIME          how long each target runs (a duration, or Nx runs)
#   FUZZPARALLEL      fuzzing workers per target (default 1: the edge's
#                     targets each run a whole deployment per worker)
#   FUZZMINIMIZETIME  budget to minimise each new input (default 100x:
#                     targets whose process runs NATS and a provisioner
#                     see background coverage, which minimises slowly)
#   FUZZ              a regexp: only the targets whose name matches
set -euo pipefail
. "$(dirname "$0")/lib.sh"

GO=${GO:-go}
PKGS=${PKGS:-./...}
FUZZTIME=${FUZZTIME:-20s}
FUZZPARALLEL=${FUZZPARALLEL:-1}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-100x}
FUZZ=${FUZZ:-.}

# go test -list prints each package's matching names, then its "ok" line.
# shellcheck disable=SC2086 # PKGS is a list of patterns
listing=$($GO test -list '^Fuzz' $PKGS)
targets=()
names=()
while IFS= read -r line; do
  case "$line" in
    Fuzz*) names+=("$line") ;;
    ok*)
      pkg=$(awk '{print $2}' <<<"$line")
      for n in ${names[@]+"${names[@]}"}; do targets+=("$pkg $n"); done
      names=()
      ;;
  esac
done <<<"$listing"
selected=()
for t in ${targets[@]+"${targets[@]}"}; do
  if grep -Eq -- "$FUZZ" <<<"${t#* }"; then selected+=("$t"); fi
done
if [ ${#selected[@]} -eq 0 ]; then
  log "no fuzz target matches FUZZ=$FUZZ in $PKGS"
  exit 1
fi
log "${#selected[@]} fuzz targets, $FUZZTIME each: $(printf '%s ' "${selected[@]#* }")"

failed=()
for t in "${selected[@]}"; do
  pkg=${t% *} name=${t#* }
  log "fuzzing $name ($pkg) for $FUZZTIME"
  if ! $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" \
      -fuzzminimizetime "$FUZZMINIMIZETIME" -parallel "$FUZZPARALLEL" "$pkg"; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  log "failed: $(printf '%s; ' "${failed[@]}")"
  log "each failing input is in its package's testdata/fuzz/<Target>/: fix the bug and commit the file as a seed"
  exit 1
fi
log "all ${#selected[@]} fuzz targets ran $FUZZTIME without a failure"
