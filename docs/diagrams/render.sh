#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerates every docs/diagrams/*.dot as docs/diagrams/*.svg (the SVGs are committed; run this
# after editing a .dot). Needs Graphviz's `dot` (Debian: apt-get install graphviz).
set -euo pipefail
shopt -s nullglob
cd "$(dirname "${BASH_SOURCE[0]}")"
for source in *.dot; do
    dot -Tsvg "$source" -o "${source%.dot}.svg"
    echo "docs/diagrams/${source%.dot}.svg"
done
