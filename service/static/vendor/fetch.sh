#!/usr/bin/env bash
# Re-create the vendored Vega files from npm (pinned versions); run from this folder.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent vega@6.4.0 vega-lite@6.5.0 vega-embed@7.3.0 >/dev/null)
for pkg in vega-6.4.0 vega-lite-6.5.0 vega-embed-7.3.0; do
  mkdir -p "$tmp/$pkg" && tar xzf "$tmp/$pkg.tgz" -C "$tmp/$pkg"
  name=${pkg%-*}
  cp "$tmp/$pkg/package/build/$name.min.js" .
  cp "$tmp/$pkg/package/LICENSE" "LICENSE-$name.txt"
done
sed -i 's#//\# sourceMappingURL=.*$##' ./*.min.js
