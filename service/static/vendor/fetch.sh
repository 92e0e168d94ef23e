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
# Swagger UI for /docs
(cd "$tmp" && npm pack --silent swagger-ui-dist@5.35.0 >/dev/null && tar xzf swagger-ui-dist-5.35.0.tgz)
mkdir -p swagger-ui
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
  cp "$tmp/package/$f" swagger-ui/
done
sed -i 's#//\# sourceMappingURL=.*$##' swagger-ui/swagger-ui-bundle.js
sed -i 's#/\*\# sourceMappingURL=.*\*/##' swagger-ui/swagger-ui.css
