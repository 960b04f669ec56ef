// SPDX-License-Identifier: Apache-2.0
//
// Blocking HTTP GET with libcurl for command-line tools; see http_client.h.
#include "http_client.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

static size_t
http_client_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct buf *body = userp;
	size_t len = size * nmemb;

	if (body->len + len > HTTP_CLIENT_MAX_BODY)
		return 0; // curl fails the transfer with CURLE_WRITE_ERROR
	buf_append(body, data, len);
	return len;
}

long
http_client_get(const char *url, const char *token, long timeout_ms, struct buf *body, char *err,
    size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	CURL *easy = curl_easy_init();
	long status = -1;
	CURLcode rc;

	buf_reset(body);
	if (easy == NULL) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	if (token != NULL) {
		char auth[512];

		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, auth);
	}
	headers = curl_slist_append(headers, "Accept: application/json");
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_client_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(easy);
	if (rc != CURLE_OK)
		snprintf(err, errlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(easy);
	return status;
}
