#!/usr/bin/env bash
# Fails when a C source calls a banned function (STYLE.md): strcpy strcat
# sprintf vsprintf strtok atoi atol gets sscanf.  Word-bounded, so snprintf,
# strtol or fgets do not match; comments and string literals are skipped
# roughly (a line whose match sits after // or inside "..." or a /* */
# comment on one line is not counted).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$top_srcdir" || exit 99

banned='strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets|sscanf'
dirs=()
for d in cgi core config tests; do
    [ -d "$d" ] && dirs+=("$d")
done
if [ "${#dirs[@]}" -eq 0 ]; then
    echo "SKIP: no C sources under $top_srcdir"
    exit 77
fi

hits=$(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) -print0 |
    sort -z |
    xargs -0 -r grep -nHE "(^|[^A-Za-z0-9_])($banned)[[:space:]]*\(" |
    awk -v re="(^|[^A-Za-z0-9_])($banned)[[:space:]]*[(]" '
        {
            # file:line:text; drop comments and string literals, test again.
            i = index($0, ":"); j = index(substr($0, i + 1), ":")
            text = substr($0, i + j + 1)
            gsub(/"([^"\\]|\\.)*"/, "\"\"", text)
            gsub(/\/\*.*\*\//, "", text)
            sub(/\/\/.*$/, "", text)
            if (text ~ /^[[:space:]]*\*/) next   # inside a block comment
            if (text ~ re) print
        }')

nfiles=$(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) | wc -l)
if [ -n "$hits" ]; then
    echo "FAIL: banned functions (use snprintf, strtol/strtoll with checks, memcpy):"
    printf '%s\n' "$hits"
    exit 1
fi
echo "ok - no banned call in $nfiles C files (${banned//|/ })"
exit 0
