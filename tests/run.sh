#!/usr/bin/env bash
# The whole test run: `bash tests/run.sh` from the top of the tree.
#
#  1. as root, installs the Debian packages that are missing;
#  2. build/release: autogen, configure --enable-test-seams (the
#     TDHOOK_TEST_* variables the suites use; see core/util/testseam.h),
#     make, make check (unit tests,
#     integration tests with a real nginx, the banned-function check);
#  3. build/debug: clang with --enable-debug --enable-fuzz (-Werror, ASan,
#     UBSan), make check again under the sanitizers;
#  4. each libFuzzer target for FUZZ_SECONDS (default 30);
#  5. with RUN_DISTCHECK=1, make distcheck.
#
# Ends with the figures of each suite, the time taken and one line
# "tests: N passed, N failed, N skipped"; exits 1 when anything failed.
# SKIP_DEBUG=1 skips steps 3 and 4.  JOBS sets make's -j (default: CPUs).
# With CI=true (as CI runs it) a skipped suite fails the run.
set -u

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top" || exit 99

PACKAGES="autoconf automake libtool pkg-config make gcc clang libfcgi-dev
libcurl4-openssl-dev libjson-c-dev libyaml-dev libxml2-dev libcmocka-dev
nginx-light curl spawn-fcgi python3-aiosmtpd systemd groff-base time
dpkg-dev fakeroot lintian"
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
export FUZZ_SECONDS

t_start=$(date +%s)
failed_steps=()
figures=()
logdir=$top/build/logs

say() { printf '%s\n' "$*"; }
step() { say "==> $*"; }
elapsed() { say "$(($(date +%s) - t_start)) s"; }

# quiet NAME CMD...: runs CMD with its output in build/logs/NAME.log; shows
# the last lines when it fails.
quiet() {
    local name=$1 rc
    shift
    "$@" >"$logdir/$name.log" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ]; then
        say "FAILED: $name (exit $rc); last lines of build/logs/$name.log:"
        tail -n 60 "$logdir/$name.log"
    fi
    return "$rc"
}

# --- 1. packages -----------------------------------------------------------
install_packages() {
    local missing=() p
    command -v dpkg-query >/dev/null 2>&1 || return 0
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "warning: missing packages (run as root to install): ${missing[*]}"
        return 0
    fi
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-update apt-get update -q &&
        quiet apt-install apt-get install -y -q --no-install-recommends "${missing[@]}"
}

mkdir -p "$logdir"
install_packages || failed_steps+=("install packages")

# --- 2. and 3. the builds --------------------------------------------------
if [ -f "$top/config.status" ]; then
    say "FAILED: the source tree is configured in place; the builds go to build/*,"
    say "        which needs a clean tree: run 'make distclean' at the top first."
    exit 1
fi

# Advisory only: shellcheck is not among the packages a fresh machine gets.
if command -v shellcheck >/dev/null 2>&1; then
    step "shellcheck (advisory)"
    mapfile -t scripts < <(cd "$top" && ls autogen.sh .ci/run deploy/*.sh tests/*.sh \
        tests/integration/*.sh tests/fuzz/*.sh 2>/dev/null)
    if (cd "$top" && shellcheck -x --severity=warning "${scripts[@]}" >"$logdir/shellcheck.log" 2>&1); then
        figures+=("shellcheck: ${#scripts[@]} scripts, no warning")
    else
        n=$(grep -c '^In ' "$logdir/shellcheck.log" || true)
        figures+=("shellcheck: $n warnings in ${#scripts[@]} scripts (advisory, see build/logs/shellcheck.log)")
        cat "$logdir/shellcheck.log"
    fi
fi

step "autogen"
quiet autogen ./autogen.sh || failed_steps+=("autogen")

# build NAME CONFIGURE-ARGS...: configure and make in build/NAME, then make
# check; the check output is shown as it runs.
build() {
    local name=$1 dir=$top/build/$1 t0 rc
    shift
    # CHECK_ARGS: extra make variables for this build's check.
    local -a check_args=()
    [ -n "${CHECK_ARGS:-}" ] && read -r -a check_args <<<"$CHECK_ARGS"
    t0=$(date +%s)
    mkdir -p "$dir"
    step "configure build/$name $*"
    (cd "$dir" && quiet "configure-$name" "$top/configure" "$@") ||
        { failed_steps+=("configure $name"); return 1; }
    step "make build/$name"
    (cd "$dir" && quiet "make-$name" make -j"$JOBS") ||
        { failed_steps+=("make $name"); return 1; }
    step "make check build/$name"
    rm -f "$dir/test-suite.log"
    (cd "$dir" && set -o pipefail && make -j"$JOBS" check "${check_args[@]}" 2>&1 | tee "$logdir/check-$name.log")
    rc=$?
    if [ "$rc" -ne 0 ] || ! grep -q '^# FAIL: *0$' "$dir/test-suite.log" 2>/dev/null ||
        ! grep -q '^# ERROR: *0$' "$dir/test-suite.log" 2>/dev/null; then
        failed_steps+=("make check $name")
        show_failures "$dir"
    fi
    figures+=("build/$name: $(suite_line "$dir") in $(($(date +%s) - t0)) s")
    return "$rc"
}

# suite_line DIR: "N tests: P pass, S skip, F fail" from test-suite.log.
suite_line() {
    local log=$1/test-suite.log
    [ -r "$log" ] || { say "no test-suite.log"; return; }
    say "$(count "$log" TOTAL) tests: $(count "$log" PASS) pass, $(count "$log" SKIP) skip, $(count "$log" FAIL) fail, $(count "$log" ERROR) error"
}

# count FILE WHAT: the number after "# WHAT:" in an automake test-suite.log.
count() {
    local n
    n=$(sed -n -E "s/^# $2:[[:space:]]*([0-9]+).*/\\1/p" "$1" 2>/dev/null | head -n 1)
    say "${n:-0}"
}

# show_failures DIR: the log of every test that did not pass or skip.
show_failures() {
    local trs log
    while IFS= read -r trs; do
        if grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$trs"; then
            log=${trs%.trs}.log
            say "======== ${log#"$top"/} ========"
            cat "$log"
        fi
    done < <(find "$1" -name '*.trs' | sort)
}

build release --enable-test-seams || true

if [ "${SKIP_DEBUG:-0}" != 1 ]; then
    export ASAN_OPTIONS=detect_leaks=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    if command -v clang >/dev/null 2>&1; then
        # The fakes' own self-tests run no C code, and the package is built
        # with its own flags: once is enough.
        CHECK_ARGS="FAKE_TESTS= PACKAGE_TESTS=" build debug CC=clang --enable-debug --enable-fuzz --enable-test-seams || true
        step "fuzzing, $FUZZ_SECONDS s per target"
        t0=$(date +%s)
        if bash "$top/tests/fuzz/run.sh" "$top/build/debug" | tee "$logdir/fuzz.log"; then
            :
        else
            failed_steps+=("fuzz")
        fi
        while IFS= read -r line; do
            figures+=("$line")
        done < <(grep -E '^fuzz: ' "$logdir/fuzz.log")
        figures+=("fuzzing took $(($(date +%s) - t0)) s")
    else
        failed_steps+=("clang missing: no debug build")
    fi
    unset ASAN_OPTIONS UBSAN_OPTIONS
fi

# --- 5. distcheck ---------------------------------------------------------------
if [ "${RUN_DISTCHECK:-0}" = 1 ]; then
    step "make distcheck"
    t0=$(date +%s)
    if (cd "$top/build/release" && quiet distcheck make distcheck); then
        figures+=("make distcheck: passed in $(($(date +%s) - t0)) s")
    else
        failed_steps+=("make distcheck")
    fi
fi

# --- summary -------------------------------------------------------------------
pass=0 fail=0 skip=0
for d in "$top/build/release" "$top/build/debug"; do
    [ -r "$d/test-suite.log" ] || continue
    pass=$((pass + $(count "$d/test-suite.log" PASS) + $(count "$d/test-suite.log" XFAIL)))
    fail=$((fail + $(count "$d/test-suite.log" FAIL) + $(count "$d/test-suite.log" ERROR) + $(count "$d/test-suite.log" XPASS)))
    skip=$((skip + $(count "$d/test-suite.log" SKIP)))
done

say ""
say "==> summary"
# The unit tests' own (cmocka) summaries.
for f in "$top"/build/*/tests/unit/*.log; do
    [ -r "$f" ] || continue
    b=${f#"$top"/build/}
    say "${b%%/*} ${f##*/}: $(grep -E '^\[  (PASSED|FAILED)  \]' "$f" | tr '\n' ' ')"
done
for f in "$top"/build/*/tests/integration/*.log; do
    [ -r "$f" ] || continue
    b=${f#"$top"/build/}
    say "${b%%/*} ${f##*/}: $(grep -E '^# (all [0-9]+ checks passed|[0-9]+ of [0-9]+ checks failed)|^SKIP:' "$f" | tr '\n' ' ')"
done
for f in "${figures[@]}"; do
    say "$f"
done
say "total time: $(elapsed)"
# In CI every package a suite needs is installed above: a skip there means a
# suite did not run, and that fails the run.  Skips are for a user's clone.
if [ "${CI:-}" = true ] && [ "$skip" -gt 0 ]; then
    say "skipped in CI (see SKIP: lines above):"
    grep -l '^SKIP' "$top"/build/*/tests/*/*.log "$top"/build/*/tests/*.log 2>/dev/null | sed 's/^/  /'
    failed_steps+=("$skip suites skipped in CI")
fi
if [ "${#failed_steps[@]}" -gt 0 ]; then
    say "failed steps: $(printf '%s, ' "${failed_steps[@]}" | sed 's/, $//')"
    # A step that failed before its tests ran still counts as a failure.
    [ "$fail" -gt 0 ] || fail=${#failed_steps[@]}
fi
say "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "${#failed_steps[@]}" -eq 0 ]
