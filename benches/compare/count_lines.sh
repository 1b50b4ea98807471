#!/usr/bin/env bash
# Code lines of examples/shop.rs and its Express twin, counted the same way: each formatted by its
# language's formatter at 100 columns (rustfmt's default width; prettier --print-width 100), then
# every line that is not blank and not only a comment. Needs prettier (npx fetches the pinned one).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
cp examples/shop.rs "$tmp/shop.rs"
rustfmt --edition 2021 "$tmp/shop.rs"
npx --yes prettier@3.6.2 --print-width 100 --single-quote benches/compare/shop_express/app.js > "$tmp/app.js"
count() { grep -vE '^\s*($|//)' "$1" | wc -l; }
rust=$(count "$tmp/shop.rs")
js=$(count "$tmp/app.js")
echo "examples/shop.rs: $rust code lines"
echo "benches/compare/shop_express/app.js: $js code lines"
python3 -c "print(f'ratio: {$rust / $js:.2f}')"
rm -rf "$tmp"
