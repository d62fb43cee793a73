/*
 * log.h - key=value log lines on stderr:
 *   ts=2024-05-01T12:00:00.123Z level=info msg="listening" addr=unix:///tmp/x
 * The level check happens in the macro, so arguments of suppressed lines are not evaluated.
 */
#ifndef TD_SRV_LOG_H
#define TD_SRV_LOG_H

#include "td_core.h"

enum td_log_level { TD_LOG_DEBUG, TD_LOG_INFO, TD_LOG_WARN, TD_LOG_ERROR, TD_LOG_LEVEL_COUNT };

extern int td_log_level_min;

/* Writes one line: ts, level, msg (quoted), then the caller's already formatted key=value
 * pairs (fmt may be NULL). Thread: safe; each line is written with one fputs. */
void td_log_write(enum td_log_level level, const char *msg, const char *fmt, ...) TD_PRINTF(3, 4);

/* Returns: the level named `name` ("debug", "info", "warn", "error") or -1. */
int td_log_level_parse(const char *name);
const char *td_log_level_name(int level);

#define TD_LOG(level, msg, ...)                                                           \
    do {                                                                                  \
        if ((int)(level) >= td_log_level_min)                                             \
            td_log_write((level), (msg), __VA_ARGS__);                                    \
    } while (0)

#endif
