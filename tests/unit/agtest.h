/*
 * agtest.h - the cmocka fixture of the unit tests that run ops through autograd
 * (test_autograd, test_optim_ops, test_derivatives_*, test_nn): one td_ag_session, opened
 * by setup and closed by teardown, around leakcheck.h's block count, and the main() that
 * registers the ops and runs a test table with that fixture. A file whose ops draw random
 * numbers points ag_rng at its generator and ag_rng_start at the state every op call starts
 * from (see ag_rng_reset). Each test file includes this once; everything here is static.
 */
#ifndef TD_AGTEST_H
#define TD_AGTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "leakcheck.h"
#include "td_autograd.h"

static struct td_ag_session sess;
/* The session's generator, or NULL (the ops under test draw no random numbers). */
static struct td_rng *ag_rng;
/* The state ag_rng is reset to before every op call, so random ops repeat exactly. */
static const struct td_rng *ag_rng_start;

static inline void ag_rng_reset(void)
{
    if (ag_rng && ag_rng_start)
        *ag_rng = *ag_rng_start;
}

static inline int ag_setup(void **state)
{
    leak_setup(state);
    ag_rng_reset();
    td_ag_session_init(&sess, NULL, ag_rng);
    return 0;
}

/* Closing the session frees what only it can reach (graph cycles through .grad) before the
 * leak check counts the blocks. */
static inline int ag_teardown(void **state)
{
    td_ag_session_fini(&sess);
    return leak_teardown(state);
}

#define AG_TEST(f) cmocka_unit_test_setup_teardown(f, ag_setup, ag_teardown)

/* Registers the ops, then runs tests[0..n) as the group name. Returns: the number of
 * failed tests (cmocka's exit status), or 1 when the ops cannot be registered. */
static inline int ag_run_tests(const char *name, const struct CMUnitTest *tests, size_t n)
{
    struct td_error err;
    if (td_ops_init(&err))
        return 1;
    return _cmocka_run_group_tests(name, tests, n, NULL, NULL);
}

/* ag_run_tests over an array, named like cmocka_run_group_tests names it. */
#define AG_RUN_TESTS(tests) ag_run_tests(#tests, tests, sizeof(tests) / sizeof((tests)[0]))

#endif
