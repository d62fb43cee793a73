/*
 * leakcheck.h - the cmocka fixture every engine unit test uses: setup records how many
 * allocator blocks are live, teardown turns fault injection off and fails the test when the
 * count differs (a leak, or a double free). Files with more state call these from their own
 * fixtures.
 */
#ifndef TD_LEAKCHECK_H
#define TD_LEAKCHECK_H

#include <stdint.h>
#include <stdio.h>

#include "td_core.h"

static uint64_t leak_blocks_at_start;

static inline int leak_setup(void **state)
{
    (void)state;
    leak_blocks_at_start = td_alloc_live_blocks();
    return 0;
}

static inline int leak_teardown(void **state)
{
    (void)state;
    td_alloc_fail_after(0);
    if (td_alloc_live_blocks() != leak_blocks_at_start) {
        fprintf(stderr, "leak: %llu blocks live, %llu at start\n",
                (unsigned long long)td_alloc_live_blocks(),
                (unsigned long long)leak_blocks_at_start);
        return -1;
    }
    return 0;
}

#endif
