/* Test seams: the few places where the tests may change what tdhook does
 * (stand in for a job's work, wait at a chosen point, force a code path).
 *
 * They exist only in a build configured with --enable-test-seams (the
 * builds of `bash tests/run.sh`).  In any other build, the one users
 * install, every seam answers "off" and the environment is never read, so
 * no TDHOOK_TEST_* variable can change what a production binary does.
 *
 * The seams, all read from the environment:
 *   TDHOOK_TEST_JOB              ok | sleep=MS | retry=N | fail: every job's work
 *   TDHOOK_TEST_CHECKPOINT_MS    the master's checkpoint period (0: never)
 *   TDHOOK_TEST_NO_TMPFILE=1     job files without O_TMPFILE
 *   TDHOOK_TEST_GROUP_FILES=1    every journalled job into a group file
 *   TDHOOK_TEST_ENQUEUE_DELAY_MS a server's enqueue waits there this long */
#ifndef TDHOOK_TESTSEAM_H
#define TDHOOK_TESTSEAM_H

/* 1 when this binary has the seams (--enable-test-seams). */
int testseam_enabled(void);

/* The seam's text; NULL when unset, empty or the build has no seams.
 * Borrowed from the environment. */
const char *testseam_str(const char *name);

/* 1 when the seam is "1".  *cache starts at -1 and keeps the answer, so a
 * hot path reads the environment once. */
int testseam_flag(const char *name, int *cache);

/* The seam as a whole number from 0 to max; dflt when unset, unreadable or
 * out of range, or when the build has no seams.  *cache as above (start it
 * at -1; it is meant for values >= 0). */
long testseam_number(const char *name, long max, long dflt, long *cache);

#endif
