#!/usr/bin/env bash
# Vendors Swagger UI (the /docs page's script and style) into
# internal/apidocs/swaggerui, gzipped, from its pinned npm release.
#
#   hack/vendor-swagger-ui.sh
#
# `npm pack` downloads the tarball without running anything in it; the tarball is
# checked against the pinned sha256 before a file is taken from it. The files are
# committed (tide-server embeds them, so a build needs no network and the page no
# CDN); run this only to move to another release, with its version and hash.
set -euo pipefail
VERSION=5.35.0
TARBALL_SHA256=1b8e891893404ea4c3558b6a87e2a3e494e7eedba41168c2ece5800a391a6ea6
cd "$(dirname "$0")/.."
dest=internal/apidocs/swaggerui
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tarball="$tmp/swagger-ui-dist-$VERSION.tgz"
got=$(sha256sum "$tarball" | cut -d' ' -f1)
[ "$got" = "$TARBALL_SHA256" ] || { echo "vendor-swagger-ui: swagger-ui-dist-$VERSION.tgz has sha256 $got, want $TARBALL_SHA256" >&2; exit 1; }
tar -xzf "$tarball" -C "$tmp"
mkdir -p "$dest"
for f in swagger-ui-bundle.js swagger-ui.css; do
  gzip -9 -n -c "$tmp/package/$f" > "$dest/$f.gz"
done
cp "$tmp/package/LICENSE" "$tmp/package/NOTICE" "$tmp/package/swagger-ui-bundle.js.LICENSE.txt" "$dest/"
(cd "$tmp/package" && sha256sum swagger-ui-bundle.js swagger-ui.css) > "$dest/SHA256SUMS"
echo "$VERSION" > "$dest/VERSION"
echo "vendored swagger-ui-dist $VERSION into $dest"
