# monstackd links Prometheus with its default string labels. Thanos casts
# labels.Labels to its protobuf labels, which holds only for slice labels
# (DESIGN.md §3.1), so go.mod replaces Thanos with .cache/thanos, which
# scripts/thanos-src.sh writes with copying conversions (third_party/_thanos):
# every go command here needs it first.
GO       ?= go
TAGS     := stringlabels
FLAGS    := -tags $(TAGS)
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/prometheus/common/version.Version=$(VERSION) \
            -X github.com/prometheus/common/version.Revision=$(REVISION) \
            -X github.com/prometheus/common/version.Branch=main
BIN      := bin/monstackd
TEST_TIMEOUT ?= 25m

.PHONY: all build run test test-unit test-e2e test-bench deps vet clean bench bench-bins bench-deps thanos-src

all: build

thanos-src:
	./scripts/thanos-src.sh

build: thanos-src
	$(GO) build $(FLAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/monstackd

# The quick start: the embedded default config, data under ./data.
run: build
	./$(BIN)

# Installs the real peers the end-to-end tests run against (idempotent, cached).
deps:
	./scripts/test-deps.sh
	./scripts/stock-bins.sh thanos promtool prometheus

# stdmethods is off: Prometheus' chunkenc.Iterator has Seek(int64) ValueType,
# which vet takes for a malformed io.Seeker.
vet: thanos-src
	$(GO) vet $(FLAGS) -stdmethods=false ./...

test-unit: thanos-src
	$(GO) test $(FLAGS) -race -count=1 $$($(GO) list $(FLAGS) ./... | grep -v /test/e2e)

test-e2e: build deps
	. ./.cache/test-deps.env && MONSTACKD_BIN=$(CURDIR)/$(BIN) THANOS_BIN=$(CURDIR)/.cache/bin/thanos STOCK_PROMTOOL_BIN=$(CURDIR)/.cache/bin/promtool STOCK_PROMETHEUS_BIN=$(CURDIR)/.cache/bin/prometheus $(GO) test $(FLAGS) -count=1 -timeout $(TEST_TIMEOUT) -v ./test/e2e/...

# The benchmark harness at a tiny scale: proves it works, asserts no figure.
test-bench: build bench-bins bench-deps
	. ./.cache/test-deps.env && ./.cache/bin/benchrun --scale=bench/scales/tiny.yaml --minio=$$MINIO_BIN --out=$$(mktemp -d)

test: vet test-unit test-e2e test-bench

# Side-by-side benchmark against the stock stack; BENCH_SCALE=quick|default.
# Writes bench/results/<date>-<scale>.{md,json} and monstackd's profiles.
BENCH_SCALE ?= default
bench: build bench-bins bench-deps
	. ./.cache/test-deps.env && ./.cache/bin/benchrun --scale=bench/scales/$(BENCH_SCALE).yaml --minio=$$MINIO_BIN

# The bucket phase's MinIO (built once per machine, path in .cache/test-deps.env).
bench-deps:
	./scripts/test-deps.sh

bench-bins:
	./scripts/stock-bins.sh thanos prometheus
	cd bench && $(GO) build -o ../.cache/bin/bench-target ./cmd/target && $(GO) build -o ../.cache/bin/benchrun ./cmd/benchrun

clean:
	rm -rf bin
