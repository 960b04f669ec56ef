// SPDX-License-Identifier: Apache-2.0
//
// A growable byte buffer.  Reused across operations (buf_reset keeps the
// allocation) so hot paths do not allocate per message.  The buffer owns its
// storage; buf_free releases it.
#ifndef VANTAGE_BUF_H
#define VANTAGE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_putc(struct buf *b, char c);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Returns a NUL-terminated view of the contents (the NUL is not counted in len).
const char *buf_cstr(struct buf *b);

#endif
