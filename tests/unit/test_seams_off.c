/* A production build (configured without --enable-test-seams) has no test
 * seams: whatever TDHOOK_TEST_* says, every seam answers "off". */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/util/testseam.h"

#ifdef TDHOOK_TEST_SEAMS
#error "this test must be built without TDHOOK_TEST_SEAMS"
#endif

static void
test_seams_off(void **state)
{
    int flag = -1;
    long num = -1;

    (void)state;
    setenv("TDHOOK_TEST_JOB", "fail", 1);
    setenv("TDHOOK_TEST_GROUP_FILES", "1", 1);
    setenv("TDHOOK_TEST_CHECKPOINT_MS", "0", 1);
    assert_int_equal(testseam_enabled(), 0);
    assert_null(testseam_str("TDHOOK_TEST_JOB"));
    assert_int_equal(testseam_flag("TDHOOK_TEST_GROUP_FILES", &flag), 0);
    assert_int_equal(testseam_number("TDHOOK_TEST_CHECKPOINT_MS", 1000, 1000, &num), 1000);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seams_off),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
