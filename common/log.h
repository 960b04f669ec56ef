// SPDX-License-Identifier: Apache-2.0
//
// Logging in the style of PostgreSQL's messages: lower case, no trailing
// period, names in double quotes, saying what happened and why.  Messages go
// to stderr (foreground, -d) prefixed with time, program name and level.
// fatal*() never return.  Nothing here allocates after log_init().
#ifndef VANTAGE_LOG_H
#define VANTAGE_LOG_H

#include <stdarg.h>
#include <stdnoreturn.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN };

// progname is borrowed and must outlive all logging.
void log_init(const char *progname, enum log_level min_level);
void log_set_level(enum log_level min_level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// log_warn appends ": strerror(errno)"; log_warnx does not.
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
