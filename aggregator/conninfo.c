// SPDX-License-Identifier: Apache-2.0
//
// Password redaction for libpq connection strings; see conninfo.h.  It
// follows libpq's own reading of both forms (the user information of a URL
// ends at the first '@' before any '/', a key=value value is either quoted
// with backslash escapes or runs to the next blank), so that what libpq
// would take as the password is exactly what is blanked.  When in doubt it
// blanks more, never less.
#include "conninfo.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

static bool
conninfo_is_url(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

// URL form: postgresql://[user[:password]@]host.../db?key=value&...
static void
conninfo_redact_url(struct buf *b, const char *s)
{
	const char *auth = strstr(s, "://") + 3, *p = auth, *q;

	buf_append(b, s, (size_t)(auth - s));
	while (*p != '\0' && *p != '@' && *p != '/')
		p++;
	if (*p == '@') {
		const char *colon = memchr(auth, ':', (size_t)(p - auth));

		if (colon != NULL) {
			buf_append(b, auth, (size_t)(colon + 1 - auth));
			buf_puts(b, CONNINFO_REDACTED);
			auth = p;
		}
	}
	q = strchr(auth, '?');
	if (q == NULL) {
		buf_puts(b, auth);
		return;
	}
	buf_append(b, auth, (size_t)(q + 1 - auth));
	for (p = q + 1; *p != '\0';) {
		size_t len = strcspn(p, "&");

		if (strncmp(p, "password=", 9) == 0)
			buf_puts(b, "password=" CONNINFO_REDACTED);
		else
			buf_append(b, p, len);
		p += len;
		if (*p == '&')
			buf_putc(b, *p++);
	}
}

// Length of the value at s: a quoted one with its quotes and escapes, or a
// bare word.
static size_t
conninfo_value_len(const char *s)
{
	const char *p = s;

	if (*p != '\'') {
		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		return (size_t)(p - s);
	}
	for (p++; *p != '\0' && *p != '\''; p++)
		if (*p == '\\' && p[1] != '\0')
			p++;
	if (*p == '\'')
		p++;
	return (size_t)(p - s);
}

// key=value form: "host=h password='x y' dbname=d", blanks allowed around '='.
static void
conninfo_redact_pairs(struct buf *b, const char *s)
{
	const char *p = s;

	while (*p != '\0') {
		const char *key = p;
		size_t key_len, value_len;

		if (isspace((unsigned char)*p)) {
			buf_putc(b, *p++);
			continue;
		}
		while (*p != '\0' && *p != '=' && !isspace((unsigned char)*p))
			p++;
		key_len = (size_t)(p - key);
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '=') {
			// Not a pair: libpq refuses the string; copy the word.
			buf_append(b, key, (size_t)(p - key));
			continue;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		value_len = conninfo_value_len(p);
		buf_append(b, key, (size_t)(p - key));
		if (key_len == 8 && strncmp(key, "password", 8) == 0)
			buf_puts(b, CONNINFO_REDACTED);
		else
			buf_append(b, p, value_len);
		p += value_len;
	}
}

char *
conninfo_redact(const char *conninfo)
{
	struct buf b;
	char *out;

	buf_init(&b);
	if (conninfo_is_url(conninfo))
		conninfo_redact_url(&b, conninfo);
	else
		conninfo_redact_pairs(&b, conninfo);
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}
