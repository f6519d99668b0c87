#!/usr/bin/env bash
# CI: every C source and header of the project is formatted with its
# .clang-format (Debian 12's clang-format 14). Prints the files that are
# not, and how to fix them.
set -eu
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h')
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -gt 0 ]; then
  echo "not formatted (run: clang-format -i ${bad[*]}):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "${#files[@]} C files formatted"
