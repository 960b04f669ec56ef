// SPDX-License-Identifier: Apache-2.0
//
// Bearer tokens for API writes; see auth.h.  Must never log a token or
// compare one in time that depends on where it differs.
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"

#define AUTH_TOKEN_MAX 256

struct auth_token {
	char *name;
	char *role;
	char secret[AUTH_TOKEN_MAX + 1];
	size_t len;
};

struct auth {
	struct auth_token *tokens;
	size_t n;
};

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n; i++) {
		free(a->tokens[i].name);
		free(a->tokens[i].role);
		explicit_bzero(a->tokens[i].secret, sizeof(a->tokens[i].secret));
	}
	free(a->tokens);
	free(a);
}

static int
auth_read(struct auth_token *t, const char *path, char *err, size_t errlen)
{
	char buf[AUTH_TOKEN_MAX + 2];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "could not read the token file \"%s\" of token \"%s\": %s",
		    path, t->name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 0004))
		log_warnx("token file \"%s\" is readable by every user; make it mode 0600", path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	// One line: the token, surrounding white space ignored.
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0 || (size_t)n > AUTH_TOKEN_MAX || strspn(buf, "\t ") > 0 ||
	    strcspn(buf, " \t\r\n") != (size_t)n) {
		snprintf(err, errlen,
		    "token file \"%s\" must hold one token of 1 to %d characters "
		    "without spaces",
		    path, AUTH_TOKEN_MAX);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	memcpy(t->secret, buf, (size_t)n + 1);
	t->len = (size_t)n;
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

struct auth *
auth_load(const struct agg_conf *conf, char *err, size_t errlen)
{
	struct auth *a = xcalloc(1, sizeof(*a));

	a->tokens = xcalloc(conf->n_tokens ? conf->n_tokens : 1, sizeof(*a->tokens));
	for (size_t i = 0; i < conf->n_tokens; i++) {
		struct auth_token *t = &a->tokens[a->n++];

		t->name = xstrdup(conf->tokens[i].name);
		t->role = xstrdup(conf->tokens[i].role ? conf->tokens[i].role : "read");
		if (auth_read(t, conf->tokens[i].token_file, err, errlen) < 0) {
			auth_free(a);
			return NULL;
		}
	}
	return a;
}

// Equal in time independent of where the strings differ.
static bool
auth_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = alen != blen;

	for (size_t i = 0; i < alen && i < blen; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

enum auth_result
auth_check_write(const struct auth *a, const char *authorization, const char **who)
{
	const char *token;
	size_t len;

	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
		return AUTH_MISSING;
	token = authorization + 7;
	while (*token == ' ')
		token++;
	len = strlen(token);
	for (size_t i = 0; i < a->n; i++) {
		const struct auth_token *t = &a->tokens[i];

		if (!auth_equal(token, len, t->secret, t->len))
			continue;
		if (strcmp(t->role, "write") != 0 && strcmp(t->role, "admin") != 0)
			return AUTH_FORBIDDEN;
		*who = t->name;
		return AUTH_OK;
	}
	return AUTH_INVALID;
}
