// SPDX-License-Identifier: Apache-2.0
//
// Clock helpers; see clock.h.
#include "clock.h"

#include <stdio.h>
#include <time.h>

static int64_t
clock_read(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_mono_us(void)
{
	return clock_read(CLOCK_MONOTONIC);
}

int64_t
clock_wall_us(void)
{
	return clock_read(CLOCK_REALTIME);
}

void
clock_iso8601(int64_t unix_us, char *out, size_t outlen)
{
	time_t secs = (time_t)(unix_us / 1000000);
	long frac = (long)(unix_us % 1000000);
	struct tm tm;

	if (frac < 0) {
		frac += 1000000;
		secs -= 1;
	}
	gmtime_r(&secs, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

struct timeval
clock_tv(int64_t us)
{
	struct timeval tv;

	if (us < 0)
		us = 0;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	return tv;
}
