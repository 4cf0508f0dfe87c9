#!/usr/bin/env bash
# Installs the real peers the end-to-end tests run against and writes their
# paths to .cache/test-deps.env. Idempotent: what is present is kept.
#   Debian: prometheus-node-exporter, prometheus-blackbox-exporter,
#           prometheus-alertmanager, prometheus (for promtool),
#           chromium (headless, for the query UI test).
#   Go:     MinIO (the S3 bucket of the bucket-tier tests), built once per
#           machine into ${XDG_CACHE_HOME:-~/.cache}/monstackd/bin, keyed by
#           its version, so that a fresh clone in CI does not rebuild it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache

need=()
for pair in node_exporter:prometheus-node-exporter blackbox_exporter:prometheus-blackbox-exporter \
            alertmanager:prometheus-alertmanager promtool:prometheus; do
	bin=${pair%%:*} pkg=${pair#*:}
	if ! command -v "prometheus-${bin/_/-}" >/dev/null 2>&1 && ! command -v "$bin" >/dev/null 2>&1 \
		&& [ ! -x "/usr/bin/prometheus-${bin/_/-}" ]; then
		need+=("$pkg")
	fi
done
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
	echo "test-deps: installing ${need[*]}" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	# Keep the packages' own services from starting where an init system exists.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
		$SUDO chmod +x /usr/sbin/policy-rc.d
		trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# MinIO: `go install` (about 2 min), outside the repo so every clone shares it.
# Its own go.mod is used (GOFLAGS=-mod=mod replaces the caller's GOFLAGS, such as
# -mod=vendor or -tags, which must not leak in), with the local toolchain.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
minio_dir="${XDG_CACHE_HOME:-$HOME/.cache}/monstackd/bin/minio-$MINIO_VERSION"
MINIO_BIN="$minio_dir/minio"
if [ ! -x "$MINIO_BIN" ]; then
	echo "test-deps: building minio@$MINIO_VERSION into $minio_dir (about 2 min)" >&2
	mkdir -p "$minio_dir"
	tmp=$(mktemp -d "$minio_dir.tmp.XXXXXX")
	if ! (cd "$tmp" && GOFLAGS=-mod=mod GOTOOLCHAIN=local GOBIN="$tmp" CGO_ENABLED=0 \
		go install "github.com/minio/minio@$MINIO_VERSION"); then
		rm -rf "$tmp"
		exit 1
	fi
	mv "$tmp/minio" "$MINIO_BIN" # atomic: a half-built binary is never cached
	rm -rf "$tmp"
fi

find_bin() {
	for c in "$@"; do
		if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return; fi
	done
	echo "test-deps: none of $* found" >&2
	exit 1
}
{
	echo "export NODE_EXPORTER_BIN=$(find_bin prometheus-node-exporter node_exporter)"
	echo "export BLACKBOX_EXPORTER_BIN=$(find_bin prometheus-blackbox-exporter blackbox_exporter)"
	echo "export ALERTMANAGER_BIN=$(find_bin prometheus-alertmanager alertmanager)"
	echo "export PROMTOOL_BIN=$(find_bin promtool)"
	echo "export AMTOOL_BIN=$(find_bin amtool)"
	echo "export CHROMIUM_BIN=$(find_bin chromium)"
	echo "export MINIO_BIN=$MINIO_BIN"
} > .cache/test-deps.env
cat .cache/test-deps.env
