#!/usr/bin/env bash
# `make deb` builds a Debian package that lintian passes without errors and
# that holds what a user needs: the binary, the man pages, the systemd
# units, the nginx files, the example configuration and the setup guides,
# and maintainer scripts that make the tdhook system user.
#
# Environment (make check sets it): top_srcdir.  Exit 0 passed, 1 failed,
# 77 skipped (no dpkg-deb, dpkg-shlibdeps, fakeroot or lintian: Debian's
# dpkg-dev, fakeroot and lintian; tests/run.sh installs them).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

for c in dpkg-deb dpkg-shlibdeps fakeroot lintian; do
    need_cmd "$c"
done
t_setup

if deb=$(bash "$top_srcdir/deploy/debian/build-deb.sh" "$top_srcdir" "$T" 2>"$T/deb.err"); then
    ok "make deb built $(basename "$deb")"
else
    die "make deb failed: $(cat "$T/deb.err")"
fi
dpkg-deb -c "$deb" | awk '{print $6}' >"$T/files"
for f in ./usr/bin/tdhook ./usr/share/man/man8/tdhook.8.gz ./usr/share/man/man5/tdhook.yaml.5.gz \
    ./lib/systemd/system/tdhook.service ./lib/systemd/system/tdhook.socket \
    ./lib/systemd/system/tdhook-reconcile.timer ./usr/share/tdhook/nginx/tdhook.conf \
    ./usr/share/tdhook/nginx/tdhook-zone.conf ./usr/share/doc/tdhook/examples/tdhook.yaml \
    ./usr/share/doc/tdhook/stock-check.md ./usr/share/doc/tdhook/reservations.md \
    ./usr/share/doc/tdhook/copyright ./usr/share/doc/tdhook/changelog.Debian.gz; do
    check "the package holds $f" grep -qxF "$f" "$T/files"
done
dpkg-deb -I "$deb" >"$T/info"
assert_contains "it depends on the libraries tdhook links" "$(cat "$T/info")" "libcurl"
dpkg-deb -e "$deb" "$T/control"
assert_contains "its postinst makes the tdhook system user" "$(cat "$T/control/postinst")" \
    "adduser --system --group --home /var/lib/tdhook"
dpkg-deb -x "$deb" "$T/root"
assert_contains "the unit runs the packaged binary with /etc/tdhook" \
    "$(cat "$T/root/lib/systemd/system/tdhook.service")" \
    "ExecStart=/usr/bin/tdhook -c /etc/tdhook/tdhook.yaml serve"
check "the packaged binary runs" "$T/root/usr/bin/tdhook" --version

lintian --tag-display-limit 0 "$deb" >"$T/lintian.out" 2>&1
errors=$(grep -c '^E: ' "$T/lintian.out" || true)
if [ "$errors" = 0 ]; then
    ok "lintian: no errors ($(grep -c '^W: ' "$T/lintian.out" || true) warnings)"
else
    fail "lintian: $errors errors:"
    grep '^E: ' "$T/lintian.out" | sed 's/^/    | /'
fi
finish
