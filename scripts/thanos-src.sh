#!/usr/bin/env bash
# Writes .cache/thanos: the Thanos module go.mod requires, with the files of
# third_party/_thanos in place of upstream's (third_party/_thanos/README.md
# says why). go.mod replaces github.com/thanos-io/thanos with it. Cached: it
# is rewritten only when the version or the patch files change.
set -euo pipefail
cd "$(dirname "$0")/.."
src=third_party/_thanos
out=.cache/thanos
want=$(cat "$src/VERSION")
# go.mod's require line; go commands in this module need .cache/thanos already.
have=$(awk '$1 == "github.com/thanos-io/thanos" && $2 ~ /^v/ { print $2; exit }' go.mod)
if [ "$have" != "$want" ]; then
	echo "thanos-src: go.mod requires thanos $have, but $src/ was made from $want: port its files to $have and update $src/VERSION" >&2
	exit 1
fi
stamp=$( (echo "$want"; cd "$src" && find . -type f | sort | xargs sha256sum) | sha256sum | cut -c1-16)
if [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi
# Outside this module, whose go.mod points at what is being made here.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dir=$(cd "$tmp" && go mod download -json "github.com/thanos-io/thanos@$want" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "thanos-src: no module directory for thanos $want" >&2; exit 1; }
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cp -r "$dir/go.mod" "$dir/LICENSE" "$dir/internal" "$dir/pkg" "$out.tmp/"
chmod -R u+w "$out.tmp"
(cd "$src" && find . -name '*.go') | while IFS= read -r f; do
	cp "$src/$f" "$out.tmp/$f"
done
echo "$stamp" > "$out.tmp/.stamp"
if [ -d "$out" ]; then chmod -R u+w "$out"; rm -rf "$out"; fi
mv "$out.tmp" "$out"
