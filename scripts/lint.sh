#!/usr/bin/env bash
# `make lint`: the Swift sources are formatted as `swift format` (the toolchain's formatter, configured
# by .swift-format) would format them, and no line passes 150 columns. The only lines allowed past it
# are string literals that swift format cannot break: recorded wire data (a provider's JSON, kept
# byte for byte as it was sent) and the generated migrations file, which embeds schema/*.sql verbatim.
# `swift format -i -r -p Sources Tests bench fuzz Package.swift` fixes what the first check finds.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(Sources Tests bench fuzz Package.swift)
status=0
swift format lint --strict --recursive --parallel "${paths[@]}" || status=1
# Lines over 150 columns, but those that start with a string literal (after a `+` or `==` that joins
# it to the line before).
long=$(find "${paths[@]}" -name '*.swift' ! -name 'Migrations+Generated.swift' -print0 |
    xargs -0 awk 'length > 150 && $0 !~ /^[[:space:]]*(\+ |== )?#*"/ { print FILENAME ":" FNR ": " length " columns" }')
if [[ -n "$long" ]]; then
    echo "lines over 150 columns (break them; a long string literal starts its own line):"
    echo "$long"
    status=1
fi
exit $status
