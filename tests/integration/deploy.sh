#!/usr/bin/env bash
# `make install DESTDIR=...` installs every deploy file where it belongs,
# the systemd units verify, and the man pages render without a warning.
#
# Environment (make check sets them): top_srcdir, top_builddir, TDHOOK.
# Exit 0 passed, 1 failed, 77 skipped (no configured build tree, or no
# systemd-analyze).  KEEP_TMP=1 keeps the temporary directory.
#
# Install locations checked (the build's own prefixes):
#   $(bindir)/tdhook
#   $(mandir)/man8/tdhook.8, $(mandir)/man5/tdhook.yaml.5
#   $(sysconfdir)/tdhook/tdhook.yaml.example
#   $(systemdsystemunitdir, else $(prefix)/lib/systemd/system)/
#       tdhook.socket tdhook.service tdhook-reconcile.service tdhook-reconcile.timer
#   $(datadir)/tdhook/nginx/tdhook.conf
# shellcheck disable=SC2317  # cleanup() is called by the EXIT trap
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
TDHOOK=${TDHOOK:-$top_builddir/tdhook}

FAILS=0
CHECKS=0
SKIPPED_PARTS=0

say() { printf '%s\n' "$*"; }
ok() { CHECKS=$((CHECKS + 1)); say "ok - $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); say "FAIL: $*"; }
skip_part() { SKIPPED_PARTS=$((SKIPPED_PARTS + 1)); say "skip - $*"; }
skip() { say "SKIP: $*"; exit 77; }

# show FILE: indents a file's content into the log.
show() { sed 's/^/    | /' "$1"; }

[ -f "$top_builddir/Makefile" ] || skip "$top_builddir is not a configured build tree"
command -v make >/dev/null 2>&1 || skip "make is not installed"

T=$(mktemp -d "${TMPDIR:-/tmp}/tdhook-deploy.XXXXXX") || exit 1
cleanup() {
    if [ -n "${KEEP_TMP:-}" ]; then
        say "kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
DEST=$T/root

# A make that does not inherit the outer make's jobserver or variables.
submake() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make "$@"
}

# makevar NAME: the build's value of a make variable, fully expanded.
# shellcheck disable=SC2016  # $($*) is for make, not for the shell
printf 'tdhook-print-%%:\n\t@printf "%%s\\n" "$($*)"\n' >"$T/print.mk"
makevar() {
    submake -s --no-print-directory -C "$top_builddir" -f Makefile -f "$T/print.mk" \
        "tdhook-print-$1" 2>/dev/null
}

# --- (a) make install -------------------------------------------------------
if submake -C "$top_builddir" install DESTDIR="$DEST" >"$T/install.log" 2>&1; then
    ok "make install DESTDIR=... succeeds"
else
    fail "make install DESTDIR=... failed:"
    tail -n 30 "$T/install.log" | sed 's/^/    | /'
    exit 1
fi

prefix=$(makevar prefix)
bindir=$(makevar bindir)
sysconfdir=$(makevar sysconfdir)
datadir=$(makevar datadir)
mandir=$(makevar mandir)
unitdir=$(makevar systemdsystemunitdir)
[ -n "$unitdir" ] || unitdir=$prefix/lib/systemd/system
if [ -z "$prefix" ] || [ -z "$bindir" ] || [ -z "$sysconfdir" ] || [ -z "$datadir" ] ||
   [ -z "$mandir" ]; then
    fail "could not read the install directories from $top_builddir/Makefile"
    exit 1
fi
say "# prefix=$prefix bindir=$bindir sysconfdir=$sysconfdir datadir=$datadir"
say "# mandir=$mandir unitdir=$unitdir"

# installed WHAT PATH: PATH (under the DESTDIR) is a non-empty file.
installed() {
    if [ -f "$DEST$2" ] && [ -s "$DEST$2" ]; then
        ok "installed: $1 ($2)"
        return 0
    fi
    fail "not installed: $1 (expected $2)"
    return 1
}

if installed "the binary" "$bindir/tdhook"; then
    if [ -x "$DEST$bindir/tdhook" ] && "$DEST$bindir/tdhook" --version >"$T/version" 2>&1 &&
       grep -q '^tdhook ' "$T/version"; then
        ok "the installed binary runs: $(cat "$T/version")"
        if [ -x "$TDHOOK" ] && [ "$("$TDHOOK" --version 2>&1)" != "$(cat "$T/version")" ]; then
            fail "the installed binary is not the one built: $("$TDHOOK" --version 2>&1)"
        fi
    else
        fail "the installed binary does not run"
        show "$T/version"
    fi
fi
installed "tdhook(8)" "$mandir/man8/tdhook.8"
installed "tdhook.yaml(5)" "$mandir/man5/tdhook.yaml.5"
installed "the example configuration" "$sysconfdir/tdhook/tdhook.yaml.example"
for unit in tdhook.socket tdhook.service tdhook-reconcile.service tdhook-reconcile.timer; do
    installed "$unit" "$unitdir/$unit"
done
installed "the nginx rate limit zone" "$datadir/tdhook/nginx/tdhook-zone.conf"
if installed "the nginx snippet" "$datadir/tdhook/nginx/tdhook.conf"; then
    if cmp -s "$top_srcdir/deploy/nginx/tdhook.conf" "$DEST$datadir/tdhook/nginx/tdhook.conf"; then
        ok "the nginx snippet is deploy/nginx/tdhook.conf unchanged"
    else
        fail "the installed nginx snippet differs from deploy/nginx/tdhook.conf"
    fi
fi

# The generated services name the configured directories.
for pair in "tdhook.service:serve --workers 4" "tdhook-reconcile.service:reconcile"; do
    unit=${pair%%:*}
    f=$DEST$unitdir/$unit
    [ -f "$f" ] || continue
    if grep -q '@[a-z_]*@' "$f"; then
        fail "$unit still holds a placeholder: $(grep -o '@[a-z_]*@' "$f" | sort -u | tr '\n' ' ')"
    else
        ok "$unit has every placeholder substituted"
    fi
    want="ExecStart=$bindir/tdhook -c $sysconfdir/tdhook/tdhook.yaml ${pair#*:}"
    if grep -qxF "$want" "$f"; then
        ok "$unit: $want"
    else
        fail "$unit: expected $want, found $(grep '^ExecStart=' "$f")"
    fi
done

# --- (b) systemd-analyze verify ------------------------------------------------
# Verified inside the DESTDIR with --root, so ExecStart= is checked against
# the installed binary and Documentation= against the installed man pages.
# systemd resolves the default dependencies (sysinit.target ...) there too:
# the host's own units are copied in for that.  verify reports problems such
# as unknown keys as warnings with exit 0, so any output is a failure, except
# a complaint about the user tdhook, which need not exist on this machine.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    skip_part "systemd-analyze is not installed: units not verified"
    units_verified=skip
else
    hostunits=
    for d in /usr/lib/systemd/system /lib/systemd/system; do
        if [ -f "$d/sysinit.target" ]; then
            hostunits=$d
            break
        fi
    done
    # systemd looks for units only in its own directories: a prefix such
    # as make distcheck's is not one of them, so verify copies placed in
    # /etc/systemd/system of the root.
    units=()
    mkdir -p "$DEST/etc/systemd/system"
    for unit in tdhook.socket tdhook.service tdhook-reconcile.service tdhook-reconcile.timer; do
        if [ -f "$DEST$unitdir/$unit" ]; then
            cp "$DEST$unitdir/$unit" "$DEST/etc/systemd/system/$unit"
            units+=("$DEST/etc/systemd/system/$unit")
        fi
    done
    if [ ${#units[@]} -eq 0 ]; then
        fail "no unit to verify"
    elif [ -z "$hostunits" ]; then
        skip_part "no systemd unit directory on this machine: units not verified"
    else
        mkdir -p "$DEST/usr/lib/systemd/system" &&
            cp -R "$hostunits/." "$DEST/usr/lib/systemd/system/" 2>/dev/null
        # ExecReload= runs the system's /bin/sh, which the root lacks.
        mkdir -p "$DEST/bin" && cp /bin/sh "$DEST/bin/sh"
        MANPATH=$DEST$mandir SYSTEMD_LOG_COLOR=0 SYSTEMD_PAGER='' \
            systemd-analyze verify --root="$DEST" "${units[@]}" >"$T/verify.out" 2>&1
        rc=$?
        grep -v -i -E "user .?tdhook.?|tdhook.*(user|group).*(not found|does not exist|unknown)" \
            "$T/verify.out" >"$T/verify.rest"
        if [ "$rc" -eq 0 ] && [ ! -s "$T/verify.rest" ]; then
            ok "systemd-analyze verify: ${#units[@]} units clean"
        else
            fail "systemd-analyze verify (exit $rc) reports:"
            show "$T/verify.out"
        fi
    fi
fi

# --- (c) the man pages render without warnings ------------------------------
if command -v groff >/dev/null 2>&1; then
    render=(groff -man -ww -z -Tutf8)
elif command -v mandoc >/dev/null 2>&1; then
    render=(mandoc -Tlint -Wwarning)
elif command -v nroff >/dev/null 2>&1; then
    render=(nroff -man -ww -z)
else
    render=()
fi
if [ ${#render[@]} -eq 0 ]; then
    skip_part "neither groff, mandoc nor nroff is installed: man pages not rendered"
else
    for page in "$mandir/man8/tdhook.8" "$mandir/man5/tdhook.yaml.5"; do
        [ -f "$DEST$page" ] || continue
        name=$(basename "$page")
        LC_ALL=C.UTF-8 "${render[@]}" "$DEST$page" >"$T/render.out" 2>&1
        rc=$?
        if [ "$rc" -eq 0 ] && [ ! -s "$T/render.out" ]; then
            ok "$name renders without warnings (${render[0]})"
        else
            fail "$name: ${render[*]} (exit $rc) warns:"
            show "$T/render.out"
        fi
        # Every section the page promises is there.
        LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$DEST$page" 2>/dev/null | col -b >"$T/page.txt" 2>/dev/null ||
            LC_ALL=C.UTF-8 groff -man -Tutf8 -P-c "$DEST$page" 2>/dev/null >"$T/page.txt"
        if [ "$name" = tdhook.8 ]; then
            want="NAME SYNOPSIS DESCRIPTION COMMANDS HTTP QUEUE SIGNALS EXIT ENVIRONMENT FILES EXAMPLES"
        else
            want="NAME DESCRIPTION EXAMPLE"
        fi
        missing=
        for s in $want; do
            grep -q "^$s" "$T/page.txt" || missing="$missing $s"
        done
        if [ -s "$T/page.txt" ] && [ -z "$missing" ]; then
            ok "$name has its sections"
        else
            fail "$name lacks sections:${missing:- (empty rendering)}"
        fi
    done
fi

say "$CHECKS checks, $FAILS failed, $SKIPPED_PARTS parts skipped"
if [ "$FAILS" -gt 0 ]; then
    exit 1
fi
if [ "${units_verified:-}" = skip ]; then
    exit 77
fi
exit 0
