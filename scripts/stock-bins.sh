#!/usr/bin/env bash
# Builds the stock binaries monstackd is compared with and tested against,
# at the versions monstackd links (bench/go.mod), into .cache/bin. Cached:
# a binary is rebuilt only when bench/go.mod or bench/go.sum change.
#   usage: scripts/stock-bins.sh thanos [prometheus]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/bin
stamp=$(cat bench/go.mod bench/go.sum | sha256sum | cut -c1-16)
for name in "$@"; do
	case "$name" in
	thanos) pkg=github.com/thanos-io/thanos/cmd/thanos tags=netgo,slicelabels ;;
	prometheus) pkg=github.com/prometheus/prometheus/cmd/prometheus tags=netgo ;;
	*) echo "stock-bins: unknown binary $name" >&2; exit 2 ;;
	esac
	out=.cache/bin/$name
	if [ -x "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
		continue
	fi
	echo "stock-bins: building $name (first time takes minutes)" >&2
	(cd bench && go build -tags "$tags" -o "../$out" "$pkg")
	echo "$stamp" > "$out.stamp"
done
