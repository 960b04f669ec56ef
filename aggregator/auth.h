// SPDX-License-Identifier: Apache-2.0
//
// API tokens: bearer tokens read from the files named in `api_tokens:`.
// Writes to the API need a token whose role is "write" or "admin"; a token
// that is valid but only "read" gets 403, a missing or unknown one 401.
// Tokens are compared in constant time and never logged.
#ifndef VANTAGE_AUTH_H
#define VANTAGE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "agg_conf.h"

struct auth;

// Reads every token file.  NULL with a reason in err when one is missing,
// empty or too long.  A token file readable by others is logged as a warning.
struct auth *auth_load(const struct agg_conf *conf, char *err, size_t errlen);
void auth_free(struct auth *a);

enum auth_result { AUTH_OK, AUTH_MISSING, AUTH_INVALID, AUTH_FORBIDDEN };

// Checks an Authorization header value for a write.  On AUTH_OK, *who is
// the token's name (borrowed).
enum auth_result auth_check_write(const struct auth *a, const char *authorization,
    const char **who);

#endif
