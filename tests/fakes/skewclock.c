// SPDX-License-Identifier: Apache-2.0
//
// skewclock: an LD_PRELOAD shim that moves a process's wall clock.  Network
// namespaces share the kernel's one CLOCK_REALTIME, so a lab "region" whose
// clock is off (TESTPLAN.md §3 #13) is made by shifting what the process
// reads instead: clock_gettime(CLOCK_REALTIME and its variants),
// gettimeofday and time return the real time plus VANTAGE_SKEW_US
// microseconds (may be negative).  Monotonic clocks are left alone, as a
// badly set wall clock would leave them.  Built as build/fakes/skewclock.so:
//
//   LD_PRELOAD=build/fakes/skewclock.so VANTAGE_SKEW_US=-600000000 vantage-agent ...
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static int64_t skew_us;

// Runs when the shim is loaded, before main: resolves the real function
// once, so the wrappers below never race on it.
__attribute__((constructor)) static void
skew_init(void)
{
	const char *s = getenv("VANTAGE_SKEW_US");

	real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
	skew_us = s != NULL ? strtoll(s, NULL, 10) : 0;
}

static int
skew_is_wall(clockid_t id)
{
	return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI;
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	int64_t ns;
	int rc;

	if (real_clock_gettime == NULL)
		skew_init();
	rc = real_clock_gettime(id, ts);
	if (rc != 0 || !skew_is_wall(id) || skew_us == 0)
		return rc;
	ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + skew_us * 1000;
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
	return 0;
}

int
gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;

	(void)tz;
	clock_gettime(CLOCK_REALTIME, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
	return 0;
}

time_t
time(time_t *out)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (out != NULL)
		*out = ts.tv_sec;
	return ts.tv_sec;
}
