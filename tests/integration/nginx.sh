#!/usr/bin/env bash
# The nginx files load as the README and deploy/nginx/tdhook.conf lay them
# out on Debian: tdhook-zone.conf in conf.d/ (inside http { }), tdhook.conf
# in snippets/, included by a site in sites-enabled/.  `nginx -t` on that
# layout, with Debian's own nginx.conf when there is one; and without the
# zone file it fails as users saw it fail, so the test can tell.
#
# Environment (make check sets it): top_srcdir.  Exit 0 passed, 1 failed,
# 77 skipped (no nginx).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib.sh disable=SC1091
. "$top_srcdir/tests/lib.sh"

t_setup nginx
N=$T/etc-nginx
mkdir -p "$N/conf.d" "$N/snippets" "$N/sites-enabled" "$N/modules-enabled" "$T/nginx-tmp"
cp /etc/nginx/fastcgi_params /etc/nginx/mime.types "$N/" 2>/dev/null ||
    skip "no /etc/nginx/fastcgi_params or mime.types"
# Debian's nginx.conf, its paths moved into $N; else one of the same shape.
if [ -r /etc/nginx/nginx.conf ]; then
    sed -e "s|/etc/nginx/|$N/|g" -e "s|/run/nginx.pid|$T/nginx.pid|" \
        -e "s|/var/log/nginx/|$T/|g" /etc/nginx/nginx.conf >"$N/nginx.conf"
else
    cat >"$N/nginx.conf" <<CONF
pid $T/nginx.pid;
events { worker_connections 64; }
http {
    include $N/mime.types;
    include $N/conf.d/*.conf;
    include $N/sites-enabled/*;
}
CONF
fi
cp "$top_srcdir/deploy/nginx/tdhook-zone.conf" "$N/conf.d/tdhook-zone.conf"
cp "$top_srcdir/deploy/nginx/tdhook.conf" "$N/snippets/tdhook.conf"
port=$(free_port) || die "no free port"
cat >"$N/sites-enabled/tdhook" <<CONF
server {
    listen 127.0.0.1:$port;
    server_name hooks.example.com;
    client_body_temp_path $T/nginx-tmp/body;
    fastcgi_temp_path $T/nginx-tmp/fastcgi;
    include $N/snippets/tdhook.conf;
}
CONF

nginx_t() {
    "$NGINX" -t -p "$N" -c "$N/nginx.conf" -e "$T/nginx-t.log" >"$T/nginx-t.out" 2>&1
}

if nginx_t; then
    ok "nginx -t passes on the documented layout (conf.d, snippets, sites-enabled)"
else
    fail "nginx -t fails on the documented layout: $(cat "$T/nginx-t.out")"
fi
rm "$N/conf.d/tdhook-zone.conf"
if nginx_t; then
    fail "nginx -t passes without tdhook-zone.conf: this test cannot tell"
else
    assert_contains "without the zone file nginx -t fails as users saw it" \
        "$(cat "$T/nginx-t.out")" 'zero size shared memory zone "tdhook"'
fi
finish
