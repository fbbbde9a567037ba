# jitprov — `make test` is the one command that runs every test.
GO ?= go
PKGS := ./...

.PHONY: test test-race unit lint verify bench run build

## test: install what the tests need (Go modules, a running PostgreSQL), then vet, check formatting and run every test under the race detector.
test: verify
	./scripts/test-deps.sh
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-race: test

## unit: the tests again without the dependency check (PostgreSQL must answer).
unit:
	$(GO) test -race -count=1 $(PKGS)

## verify: go vet and gofmt.
verify:
	$(GO) vet $(PKGS)
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

## bench: provisioning throughput and latency beside pgbench (see README).
bench:
	./scripts/test-deps.sh
	$(GO) run ./cmd/jitprov-bench
