/* Unit tests of the small modules: bounded buffers, token auth, metrics. */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cgi/auth.h"
#include "core/util/buf.h"
#include "core/util/metrics.h"

static void
test_buf_cap(void **state)
{
    buf_t b;

    (void)state;
    buf_init(&b, 10);
    assert_string_equal(buf_str(&b), "");
    assert_int_equal(buf_puts(&b, "hello"), BUF_OK);
    assert_int_equal(buf_printf(&b, "%d", 1234), BUF_OK);
    assert_string_equal(buf_str(&b), "hello1234");
    /* 10 bytes fit, the 11th does not, and a failed append changes nothing. */
    assert_int_equal(buf_puts(&b, "x"), BUF_OK);
    assert_int_equal(buf_puts(&b, "y"), BUF_TOOBIG);
    assert_int_equal(buf_printf(&b, "%s", "zz"), BUF_TOOBIG);
    assert_string_equal(buf_str(&b), "hello1234x");
    assert_int_equal(b.len, 10);
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    char *s = buf_steal(&b);
    assert_string_equal(s, "");
    free(s);
    buf_free(&b);
}

static void
test_buf_overflow_guard(void **state)
{
    buf_t b;

    (void)state;
    buf_init(&b, (size_t)-1);
    assert_int_equal(buf_puts(&b, "a"), BUF_OK);
    /* A length that would wrap around is refused, not wrapped. */
    assert_int_equal(buf_append(&b, "", (size_t)-1), BUF_TOOBIG);
    buf_free(&b);
}

static void
test_auth_equal(void **state)
{
    (void)state;
    assert_true(auth_equal("secret", 6, "secret", 6));
    assert_false(auth_equal("secreT", 6, "secret", 6));
    assert_false(auth_equal("secret", 6, "secret2", 7));
    assert_false(auth_equal("secret2", 7, "secret", 6));
    assert_false(auth_equal("", 0, "x", 1));
}

static void
test_auth_base64(void **state)
{
    size_t n;
    char *s;

    (void)state;
    s = auth_base64_decode("dXNlcjp0b2tlbg==", 16, &n);
    assert_non_null(s);
    assert_int_equal(n, 10);
    assert_string_equal(s, "user:token");
    free(s);
    s = auth_base64_decode("dXNlcjp0b2tlbg", 14, &n); /* padding optional */
    assert_non_null(s);
    assert_string_equal(s, "user:token");
    free(s);
    assert_null(auth_base64_decode("d$==", 4, &n));
    assert_null(auth_base64_decode("a", 1, &n));
}

static void
test_auth_check(void **state)
{
    char *tokens[] = {"t0k3n-one", "t0k3n-two"};

    (void)state;
    assert_true(auth_check("Bearer t0k3n-one", tokens, 2));
    assert_true(auth_check("bearer   t0k3n-two ", tokens, 2));
    assert_false(auth_check("Bearer t0k3n-three", tokens, 2));
    assert_false(auth_check("Bearer ", tokens, 2));
    assert_false(auth_check("Bearer t0k3n", tokens, 2));
    assert_false(auth_check(NULL, tokens, 2));
    assert_false(auth_check("Token t0k3n-one", tokens, 2));
    /* Basic: any user name, the token as password. */
    assert_true(auth_check("Basic dG9wZGVzazp0MGszbi10d28=", tokens, 2)); /* topdesk:t0k3n-two */
    assert_true(auth_check("Basic OnQwazNuLW9uZQ==", tokens, 2));         /* :t0k3n-one */
    assert_false(auth_check("Basic dDBrM24tb25l", tokens, 2));            /* no colon */
    assert_false(auth_check("Basic dG9wZGVzazo=", tokens, 2));            /* empty password */
    assert_false(auth_check("Basic !!!!", tokens, 2));
    assert_false(auth_check("Bearer t0k3n-one", tokens, 0));
}

static void
test_metrics_render(void **state)
{
    buf_t b;

    (void)state;
    metrics_setup();
    metrics_request("/hooks/reservation", 202);
    metrics_request("/hooks/reservation", 202);
    metrics_request("other", 404);
    metrics_request(NULL, 404);
    metrics_request("/healthz", 299);
    metrics_job("reservation", OUTCOME_DONE);
    metrics_upstream(PEER_TOPDESK, 0.07);
    metrics_upstream(PEER_TOPDESK, 100);
    buf_init(&b, 1 << 20);
    metrics_render(&b, 3, 1);
    const char *s = buf_str(&b);
    assert_non_null(strstr(s, "tdhook_http_requests_total{route=\"/hooks/reservation\",status=\"202\"} 2\n"));
    assert_non_null(strstr(s, "tdhook_http_requests_total{route=\"other\",status=\"404\"} 2\n"));
    assert_non_null(strstr(s, "tdhook_http_requests_total{route=\"/healthz\",status=\"other\"} 1\n"));
    assert_non_null(strstr(s, "tdhook_jobs_total{kind=\"reservation\",outcome=\"done\"} 1\n"));
    assert_non_null(strstr(s, "tdhook_queue_depth 3\n"));
    assert_non_null(strstr(s, "tdhook_dead_letters 1\n"));
    assert_non_null(strstr(s, "tdhook_upstream_request_duration_seconds_bucket{peer=\"topdesk\",le=\"0.05\"} 0\n"));
    assert_non_null(strstr(s, "tdhook_upstream_request_duration_seconds_bucket{peer=\"topdesk\",le=\"0.1\"} 1\n"));
    assert_non_null(strstr(s, "tdhook_upstream_request_duration_seconds_bucket{peer=\"topdesk\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(s, "tdhook_upstream_request_duration_seconds_count{peer=\"topdesk\"} 2\n"));
    buf_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_buf_overflow_guard),
        cmocka_unit_test(test_auth_equal),
        cmocka_unit_test(test_auth_base64),
        cmocka_unit_test(test_auth_check),
        cmocka_unit_test(test_metrics_render),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
