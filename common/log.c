// SPDX-License-Identifier: Apache-2.0
//
// Logging to stderr, one line per message, written with a single write(2) so
// that lines from several processes sharing a terminal or file never
// interleave.  Must never allocate: it is called on out-of-memory paths.
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "vantage";
static enum log_level log_min_level = LOG_LEVEL_INFO;

void
log_init(const char *progname, enum log_level min_level)
{
	log_progname = progname;
	log_min_level = min_level;
}

void
log_set_level(enum log_level min_level)
{
	log_min_level = min_level;
}

// Appends to line at *len, truncating silently: a long message must still
// produce a line.
static void
log_append(char *line, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= size - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n > 0)
		*len += (size_t)n < size - *len ? (size_t)n : size - *len - 1;
}

static void
log_emit(const char *level, int errnum, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec now;
	struct tm tm;
	size_t len;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	len = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	log_append(line, sizeof(line), &len, ".%03ld UTC %s[%ld] %s: ", now.tv_nsec / 1000000,
	    log_progname, (long)getpid(), level);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ? (size_t)n : sizeof(line) - len - 1;
	if (errnum != 0)
		log_append(line, sizeof(line), &len, ": %s", strerror(errnum));
	line[len++] = '\n';
	(void)!write(STDERR_FILENO, line, len);
}

#define LOG_BODY(minlvl, name, errnum)           \
	do {                                     \
		va_list ap;                      \
		if ((minlvl) < log_min_level)    \
			return;                  \
		va_start(ap, fmt);               \
		log_emit(name, errnum, fmt, ap); \
		va_end(ap);                      \
	} while (0)

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, "debug", 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, "info", 0);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	LOG_BODY(LOG_LEVEL_WARN, "warning", saved);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, "warning", 0);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit("fatal", saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit("fatal", 0, fmt, ap);
	va_end(ap);
	exit(1);
}
