#!/usr/bin/env bash
# Counts the fsync'd JetStream writes of a first login and of a returning
# login, by stream, with `sync_interval: always` (the embedded nats-server of
# the edge's benchmarks runs so). It runs internal/edge's BenchmarkFirstLogin
# and BenchmarkReturningLogin under strace and attributes every fsync and
# fdatasync to the stream whose file it syncs. The returning benchmark signs
# its people in once before its timed section, so a returning login's count
# is the returning run's less the first-login run's.
#
#   scripts/fsyncs-per-login.sh [N]      # N logins per benchmark (default 300)
#
# Needs strace (Debian's package) and PostgreSQL as `make test` does.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
command -v strace >/dev/null || { echo "fsyncs-per-login: strace is not installed (apt-get install strace)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/edge.test" ./internal/edge/
count() { # bench → "stream count" lines
	(cd internal/edge && strace -f -qq -e trace=fsync,fdatasync -y -o "$dir/$1.strace" \
		"$dir/edge.test" -test.run '^$' -test.bench "^$1\$" -test.benchtime "${n}x" >"$dir/$1.out" 2>&1) ||
		{ cat "$dir/$1.out" >&2; exit 1; }
	grep -o '</[^>]*/jetstream/[^>]*/streams/[^/>]*' "$dir/$1.strace" | sed 's#.*/streams/##' | sort | uniq -c | awk '{print $2, $1}'
}
count BenchmarkFirstLogin >"$dir/first"
count BenchmarkReturningLogin >"$dir/back"
printf '%-24s %12s %16s\n' stream "first login" "returning login"
join -a1 -a2 -e0 -o 0,1.2,2.2 <(sort "$dir/first") <(sort "$dir/back") | while read -r s f b; do
	awk -v s="$s" -v f="$f" -v b="$b" -v n="$n" 'BEGIN { printf "%-24s %12.2f %16.2f\n", s, f/n, (b-f)/n }'
done
awk -v n="$n" 'NR==FNR { f += $2; next } { b += $2 } END { printf "%-24s %12.2f %16.2f\n", "all streams", f/n, (b-f)/n }' "$dir/first" "$dir/back"
