#!/usr/bin/env bash
# Builds the stock binaries monstackd is compared with and tested against,
# at the versions monstackd links (bench/go.mod), into .cache/bin. Cached:
# a binary is rebuilt only when bench/go.mod or bench/go.sum change.
#   usage: scripts/stock-bins.sh thanos [prometheus] [promtool]
# promtool is built because Debian's (2.42) lacks --http.config.file (TLS
# and basic auth), which test/e2e/auth_test.go needs.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/bin
stamp=$(cat bench/go.mod bench/go.sum scripts/stock-bins.sh | sha256sum | cut -c1-16)
for name in "$@"; do
	case "$name" in
	thanos) pkg=github.com/thanos-io/thanos/cmd/thanos tags=netgo,slicelabels mod=github.com/thanos-io/thanos ;;
	prometheus) pkg=github.com/prometheus/prometheus/cmd/prometheus tags=netgo mod=github.com/prometheus/prometheus ;;
	promtool) pkg=github.com/prometheus/prometheus/cmd/promtool tags=netgo mod=github.com/prometheus/prometheus ;;
	*) echo "stock-bins: unknown binary $name" >&2; exit 2 ;;
	esac
	out=.cache/bin/$name
	if [ -x "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
		continue
	fi
	echo "stock-bins: building $name (first time takes minutes)" >&2
	# Stamp the module version, as the upstream release builds do.
	ver=$(cd bench && go list -m -f '{{.Version}}' "$mod")
	if [ "$mod" = github.com/prometheus/prometheus ]; then
		# Prometheus 3.x.y is tagged v0.3xx.y for Go modules: v0.309.1 is 3.9.1.
		IFS=. read -r _ minor patch <<<"${ver#v}"
		ver=v3.$((minor - 300)).$patch
	fi
	(cd bench && go build -tags "$tags" -ldflags "-X github.com/prometheus/common/version.Version=${ver#v} -X github.com/prometheus/common/version.Branch=release" -o "../$out" "$pkg")
	echo "$stamp" > "$out.stamp"
done
