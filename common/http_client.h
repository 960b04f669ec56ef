// SPDX-License-Identifier: Apache-2.0
//
// A small blocking HTTP client for command-line tools (vantagectl): one
// request, the body into a buffer with a size cap.  Not for daemons: the
// agent and aggregator drive libcurl from their event loop instead.
#ifndef VANTAGE_HTTP_CLIENT_H
#define VANTAGE_HTTP_CLIENT_H

#include "buf.h"

#define HTTP_CLIENT_MAX_BODY (16 * 1024 * 1024)

// GETs url into body (reset first).  Returns the HTTP status, or -1 with a
// reason in err.  token, when not NULL, is sent as a bearer token.
long http_client_get(const char *url, const char *token, long timeout_ms, struct buf *body,
    char *err, size_t errlen);

#endif
