#!/usr/bin/env bash
# Installs the real peers the end-to-end tests run against and writes their
# paths to .cache/test-deps.env. Idempotent: what is present is kept.
#   Debian: prometheus-node-exporter, prometheus-blackbox-exporter,
#           prometheus-alertmanager, prometheus (for promtool),
#           chromium (headless, for the query UI test).
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
} > .cache/test-deps.env
cat .cache/test-deps.env
