/* log.c - key=value log lines on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int td_log_level_min = TD_LOG_INFO;

static const char *const level_names[TD_LOG_LEVEL_COUNT] = {"debug", "info", "warn", "error"};

int td_log_level_parse(const char *name)
{
    for (int i = 0; i < TD_LOG_LEVEL_COUNT; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *td_log_level_name(int level)
{
    if (level < 0 || level >= TD_LOG_LEVEL_COUNT)
        return "?";
    return level_names[level];
}

void td_log_write(enum td_log_level level, const char *msg, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, td_log_level_name((int)level), msg);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt && *fmt && used + 2 < sizeof line) {
        line[used++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
        va_end(ap);
        if (m > 0)
            used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    }
    if (used + 1 >= sizeof line)
        used = sizeof line - 2;
    line[used++] = '\n';
    line[used] = '\0';
    fputs(line, stderr);
}
