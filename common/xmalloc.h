// SPDX-License-Identifier: Apache-2.0
//
// Allocation that never returns NULL: on out-of-memory the process logs and
// exits, because every caller would otherwise need a recovery path that is
// never tested.  The caller owns what these return and frees it with free().
#ifndef VANTAGE_XMALLOC_H
#define VANTAGE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
