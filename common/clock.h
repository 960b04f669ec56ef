// SPDX-License-Identifier: Apache-2.0
//
// Clock helpers.  Monotonic time schedules and times out; wall time is only
// for timestamps that leave the process (results, logs, API).  Both are in
// microseconds as int64.
#ifndef VANTAGE_CLOCK_H
#define VANTAGE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

int64_t clock_mono_us(void);
int64_t clock_wall_us(void);
// Writes "YYYY-MM-DDTHH:MM:SS.ffffffZ" into out (at least 32 bytes).
void clock_iso8601(int64_t unix_us, char *out, size_t outlen);
struct timeval clock_tv(int64_t us);

#endif
