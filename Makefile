# jitprov — `make test` is the one command that runs every test.
GO ?= go
PKGS := ./...

.PHONY: test test-race unit lint verify bench run build chaos

# `go test ./...` prints each package's result only once every package
# before it (in import-path order) is done, so a slow early package hides
# all progress for minutes. gotestsum reads `go test -json`, whose events
# stream as they happen, and prints each package's ok/FAIL line the moment
# that package finishes, then every failure's output in full and a DONE
# line; its exit status is go test's. Pinned: `go run` of an explicit
# version needs nothing but the Go module proxy.
GOTESTSUM ?= $(GO) run gotest.tools/gotestsum@v1.13.0
GOTEST = $(GOTESTSUM) --format standard-quiet --

## test: install what the tests need (Go modules, a running PostgreSQL), then vet, check formatting and run every test under the race detector, showing each package's result as it finishes.
test: verify
	./scripts/test-deps.sh
	$(GOTEST) -race -count=1 -timeout 20m $(PKGS)

test-race: test

## unit: the tests again without the dependency check (PostgreSQL must answer).
unit:
	$(GOTEST) -race -count=1 $(PKGS)

## verify: go vet (the chaos suite too, which builds only with its tag) and gofmt.
verify:
	$(GO) vet $(PKGS)
	$(GO) vet -tags chaos ./test/chaos/
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

lint: verify

## run: run the whole system on this machine (jitprov dev: embedded NATS and store, a development IdP; see README).
run:
	$(GO) run ./cmd/jitprov dev

build:
	$(GO) build -o bin/ ./cmd/...

## fuzz: run every fuzz target of the module (found with go test -list), one at a time, FUZZTIME (default 20s) each; fails if any finds a failing input, left in its package's testdata/fuzz/ (see scripts/fuzz.sh).
.PHONY: fuzz
fuzz:
	./scripts/test-deps.sh
	GO="$(GO)" PKGS="$(PKGS)" ./scripts/fuzz.sh

## bench: the pipeline against the naive synchronous design (docs/loadtest.md): sso-edge, the provisioner and nats-server built and run as processes against the naive synchronous design and pgbench, with ratios (a few minutes; BENCH_FLAGS passes flags to jitprov loadtest compare, e.g. "-nats-sync 100ms -o json"); then provisioner-only throughput beside pgbench (jitprov-bench).
BENCH_FLAGS ?=
bench:
	./scripts/test-deps.sh
	$(GO) run ./cmd/jitprov loadtest compare $(BENCH_FLAGS)
	$(GO) run ./cmd/jitprov-bench

## chaos: the chaos suite (docs/chaos.md): real processes, faults injected mid-burst, invariants checked after recovery, a table of results; about 10 minutes. CHAOS_SCALE=2 doubles the burst rate; CHAOS_FLAGS passes -run and -chaos.* flags.
chaos:
	./scripts/chaos-deps.sh
	$(GO) test -tags chaos -count=1 -timeout 30m -v ./test/chaos/ $(CHAOS_FLAGS)
