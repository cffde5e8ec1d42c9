#!/bin/sh
# The repository stands on its own: no file in it may point at the team's shared directory
# beside or above the clone (a relative path one level up, or the machine's absolute one),
# since a user's clone has neither. Files are the ones git tracks or would track (untracked
# but not ignored), or, without git, every file of the tree but build output, node_modules
# and .git.
# Usage: self_contained_test.sh [SOURCE_DIR]   (default: the directory above this script)
set -eu
cd "${1:-$(dirname "$0")/..}"

# Spelled so that this script's own text never matches.
dir=shared
pattern="[.][.]/$dir|/work/$dir"

files=""
if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard)
fi
if [ -n "$files" ]; then
  matches=$(git ls-files -z --cached --others --exclude-standard |
            xargs -0 grep -snIE -e "$pattern" -- || true)
  how="git ls-files"
else
  matches=$(find . \( -name .git -o -name node_modules -o -path ./build \) -prune -o \
                 -type f -print0 | xargs -0 grep -snIE -e "$pattern" -- || true)
  how="find"
fi

if [ -n "$matches" ]; then
  echo "files of the repository refer to a directory outside it (checked with $how):" >&2
  echo "$matches" >&2
  exit 1
fi
echo "self-contained: no file refers outside the repository (checked with $how)"
