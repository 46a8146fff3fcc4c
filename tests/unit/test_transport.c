/* Unit tests of the one transport: which failures are worth another try,
 * Retry-After, backoff with jitter, header matching, loopback hosts. */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clients/transport.h"

/* A TLS certificate nobody trusts is "never" for every client, and the
 * message says so in words. */
static void
test_verdict_tls(void **state)
{
    const CURLcode never[] = {CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
                              CURLE_SSL_CERTPROBLEM, CURLE_SSL_ISSUER_ERROR,
                              CURLE_SSL_PINNEDPUBKEYNOTMATCH};
    const char *why;

    (void)state;
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        assert_int_equal(transport_curl_verdict(never[i], &why), TRANSPORT_NEVER);
        assert_non_null(why);
        assert_non_null(strstr(why, "not retried"));
    }
    assert_int_equal(transport_curl_verdict(CURLE_PEER_FAILED_VERIFICATION, &why),
                     TRANSPORT_NEVER);
    assert_non_null(strstr(why, "certificate is not trusted"));
}

static void
test_verdict_table(void **state)
{
    const CURLcode later[] = {CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST,
                              CURLE_OPERATION_TIMEDOUT, CURLE_GOT_NOTHING, CURLE_SEND_ERROR,
                              CURLE_RECV_ERROR, CURLE_PARTIAL_FILE, CURLE_SSL_CONNECT_ERROR,
                              CURLE_HTTP2, CURLE_HTTP2_STREAM};
    const CURLcode never[] = {CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL,
                              CURLE_WRITE_ERROR, CURLE_LOGIN_DENIED, CURLE_USE_SSL_FAILED,
                              CURLE_TOO_MANY_REDIRECTS, CURLE_NOT_BUILT_IN};

    (void)state;
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++)
        assert_int_equal(transport_curl_verdict(later[i], NULL), TRANSPORT_LATER);
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        assert_int_equal(transport_curl_verdict(never[i], NULL), TRANSPORT_NEVER);
    assert_true(transport_curl_unsent(CURLE_COULDNT_CONNECT));
    assert_false(transport_curl_unsent(CURLE_RECV_ERROR));
    assert_true(transport_status_later(429));
    assert_true(transport_status_later(503));
    assert_false(transport_status_later(501));
    assert_false(transport_status_later(404));
}

static void
test_error_text(void **state)
{
    transport_resp_t r;
    char out[400];

    (void)state;
    transport_resp_init(&r, 16);
    r.cc = CURLE_PEER_FAILED_VERIFICATION;
    snprintf(r.curl_err, sizeof r.curl_err, "SSL certificate problem: self-signed certificate");
    assert_string_equal(transport_error_text(&r, out, sizeof out),
                        "the server's TLS certificate is not trusted (an unknown CA, an expired "
                        "certificate or another host name): not retried (SSL certificate "
                        "problem: self-signed certificate)");
    r.cc = CURLE_COULDNT_CONNECT;
    snprintf(r.curl_err, sizeof r.curl_err, "Failed to connect");
    assert_string_equal(transport_error_text(&r, out, sizeof out), "Failed to connect");
    transport_resp_free(&r);
}

static void
test_retry_after(void **state)
{
    char date[64];
    time_t t = time(NULL) + 120;
    struct tm tm;
    long ms;

    (void)state;
    assert_int_equal(transport_retry_after_ms("5"), 5000);
    assert_int_equal(transport_retry_after_ms(" 2.128 "), 2128);
    assert_int_equal(transport_retry_after_ms("0"), 0);
    assert_int_equal(transport_retry_after_ms(""), -1);
    assert_int_equal(transport_retry_after_ms("-1"), -1);
    assert_int_equal(transport_retry_after_ms("soon"), -1);
    assert_int_equal(transport_retry_after_ms("1e9"), TRANSPORT_RETRY_AFTER_CAP_MS);
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ms = transport_retry_after_ms(date);
    assert_true(ms > 110000 && ms <= 120000);
    assert_int_equal(transport_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
}

static void
test_backoff(void **state)
{
    (void)state;
    for (int i = 0; i < 200; i++) {
        long b1 = transport_backoff_ms(1000, 1, 0), b3 = transport_backoff_ms(1000, 3, 0);
        long capped = transport_backoff_ms(1000, 30, 5000);

        assert_true(b1 >= 750 && b1 <= 1250);
        assert_true(b3 >= 3000 && b3 <= 5000);
        assert_true(capped >= 3750 && capped <= 5000);
    }
}

static void
test_header_match(void **state)
{
    char v[8];

    (void)state;
    assert_true(transport_is_status_line("HTTP/1.1 200 OK\r\n", 17));
    assert_false(transport_is_status_line("HTTP", 4));
    assert_true(transport_header_match("retry-after:  30 \r\n", 19, "Retry-After", v, sizeof v));
    assert_string_equal(v, "30");
    assert_true(transport_header_match("Retry-After: 123456789\r\n", 24, "Retry-After", v,
                                       sizeof v));
    assert_string_equal(v, "1234567");
    assert_false(transport_header_match("Retry-Afterx: 1\r\n", 17, "Retry-After", v, sizeof v));
}

static void
test_loopback(void **state)
{
    (void)state;
    assert_true(transport_host_is_loopback("localhost"));
    assert_true(transport_host_is_loopback("127.0.0.2"));
    assert_true(transport_host_is_loopback("[::1]"));
    assert_true(transport_host_is_loopback("::ffff:127.0.0.1"));
    assert_false(transport_host_is_loopback("10.0.0.1"));
    assert_false(transport_host_is_loopback("mail.example.com"));
    assert_true(transport_url_is_loopback("http://127.0.0.1:8080/EWS/Exchange.asmx"));
    assert_false(transport_url_is_loopback("https://mail.example.com/EWS/Exchange.asmx"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_tls),
        cmocka_unit_test(test_verdict_table),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_header_match),
        cmocka_unit_test(test_loopback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
