// SPDX-License-Identifier: Apache-2.0
//
// HTTP(S) probes; see probe_http.h.  Transfers run on the agent's loop
// through common/curl_ev; this file sets the easy options and judges each
// answer against the target's spec.  Easy handles are pooled and reused:
// a probe allocates nothing but, with body_contains, its body buffer.
#include "probe_http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "curl_ev.h"
#include "log.h"
#include "probe.h"
#include "xmalloc.h"
#include "version.h"

#define BODY_KEEP (64 * 1024) // bytes kept for body_contains

struct http_job {
	CURL *easy;
	struct probe_result *result;
	const struct probe_target *target;
	char errbuf[CURL_ERROR_SIZE];
	char *body; // first BODY_KEEP bytes, only with body_contains
	size_t body_len;
	uint64_t bytes;
	CURLcode rc; // how the transfer ended, for fill
	struct http_job *next_free;
	struct http_job *next_all; // every job ever made, for cleanup
};

struct probe_http {
	struct curl_ev *ev;
	char *source_ip;
	probe_finished_cb finished;
	void *arg;
	struct http_job *free_jobs;
	struct http_job *all_jobs;
	char user_agent[96];
};

static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_job *job = userp;
	size_t len = size * nmemb;

	job->bytes += len;
	if (job->body != NULL && job->body_len < BODY_KEEP) {
		size_t keep = BODY_KEEP - job->body_len < len ? BODY_KEEP - job->body_len : len;

		memcpy(job->body + job->body_len, data, keep);
		job->body_len += keep;
	}
	return len;
}

static uint32_t
http_us(curl_off_t v)
{
	if (v <= 0)
		return 0;
	return v > (curl_off_t)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

// curl reports cumulative times from the start; the wire carries each phase.
static void
http_fill_phases(CURL *easy, struct probe_result *r)
{
	curl_off_t dns = 0, conn = 0, app = 0, start = 0, total = 0;

	curl_easy_getinfo(easy, CURLINFO_NAMELOOKUP_TIME_T, &dns);
	curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &conn);
	curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &app);
	curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &start);
	curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total);
	r->total_us = http_us(total);
	r->dns_us = http_us(dns);
	r->connect_us = conn > dns ? http_us(conn - dns) : 0;
	r->tls_us = app > conn && conn > 0 ? http_us(app - conn) : 0;
	if (start > 0) {
		curl_off_t ready = app > 0 ? app : conn;

		r->ttfb_us = start > ready ? http_us(start - ready) : 0;
	}
	// Rounding in curl can put a phase a microsecond past the total.
	if (r->dns_us > r->total_us)
		r->dns_us = r->total_us;
	if (r->connect_us > r->total_us)
		r->connect_us = r->total_us;
	if (r->tls_us > r->total_us)
		r->tls_us = r->total_us;
	if (r->ttfb_us > r->total_us)
		r->ttfb_us = r->total_us;
}

// "Expire date" of the leaf certificate, as OpenSSL prints it.
static int64_t
http_cert_expiry(CURL *easy)
{
	struct curl_certinfo *ci = NULL;

	if (curl_easy_getinfo(easy, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == NULL ||
	    ci->num_of_certs < 1)
		return 0;
	for (struct curl_slist *s = ci->certinfo[0]; s != NULL; s = s->next) {
		struct tm tm;

		if (strncasecmp(s->data, "Expire date:", 12) != 0)
			continue;
		memset(&tm, 0, sizeof(tm));
		if (strptime(s->data + 12, " %b %d %H:%M:%S %Y", &tm) == NULL &&
		    strptime(s->data + 12, " %Y-%m-%d %H:%M:%S", &tm) == NULL)
			return 0;
		return (int64_t)timegm(&tm);
	}
	return 0;
}

static int
http_classify_error(CURLcode rc, CURL *easy, const struct probe_result *r)
{
	long oserr = 0;

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return VANTAGE__REASON__REASON_DNS;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &oserr);
		return oserr == ECONNREFUSED ? VANTAGE__REASON__REASON_REFUSED :
					       VANTAGE__REASON__REASON_NETWORK;
	case CURLE_OPERATION_TIMEDOUT:
		// No connect time: the connection itself never completed.
		return r->connect_us == 0 && r->ttfb_us == 0 ?
		    VANTAGE__REASON__REASON_CONNECT_TIMEOUT :
		    VANTAGE__REASON__REASON_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return VANTAGE__REASON__REASON_TLS;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return VANTAGE__REASON__REASON_RESET;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_TOO_MANY_REDIRECTS:
		return VANTAGE__REASON__REASON_PROTOCOL;
	default:
		return VANTAGE__REASON__REASON_NETWORK;
	}
}

static bool
http_status_expected(const struct probe_http_spec *t, uint32_t status)
{
	if (t->n_expect == 0)
		return status >= 200 && status < 400;
	for (size_t i = 0; i < t->n_expect; i++)
		if (t->expect_status[i] == status)
			return true;
	return false;
}

static void http_fail(struct probe_result *r, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
http_fail(struct probe_result *r, int reason, const char *fmt, ...)
{
	va_list ap;

	r->outcome = VANTAGE__OUTCOME__OUTCOME_DOWN;
	r->reason = reason;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

// Judges a finished transfer against the target's expectations.
static void
http_judge(struct http_job *job, CURLcode rc)
{
	struct probe_result *r = job->result;
	const struct probe_http_spec *t = &job->target->spec.http;
	const char *ip = NULL;
	long status = 0;

	http_fill_phases(job->easy, r);
	curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
	if (curl_easy_getinfo(job->easy, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL)
		snprintf(r->peer, sizeof(r->peer), "%s", ip);
	r->http_status = status > 0 && status < 1000 ? (uint32_t)status : 0;
	r->bytes = job->bytes;
	if (strncmp(t->url, "https://", 8) == 0)
		r->tls_expiry = http_cert_expiry(job->easy);
	r->outcome = VANTAGE__OUTCOME__OUTCOME_UP;
	r->reason = VANTAGE__REASON__REASON_NONE;

	if (rc != CURLE_OK) {
		http_fail(r, http_classify_error(rc, job->easy, r), "%s",
		    job->errbuf[0] ? job->errbuf : curl_easy_strerror(rc));
	} else if (!http_status_expected(t, r->http_status)) {
		http_fail(r, VANTAGE__REASON__REASON_HTTP_STATUS, "unexpected status %u",
		    r->http_status);
	} else if (t->body_contains != NULL &&
	    memmem(job->body, job->body_len, t->body_contains, strlen(t->body_contains)) == NULL) {
		http_fail(r, VANTAGE__REASON__REASON_BODY_MISMATCH,
		    "body does not contain \"%.64s\"", t->body_contains);
	} else if (t->max_latency_ms > 0 && r->total_us > (uint64_t)t->max_latency_ms * 1000) {
		http_fail(r, VANTAGE__REASON__REASON_TOO_SLOW, "took %u ms, limit %u ms",
		    r->total_us / 1000, t->max_latency_ms);
	} else if (t->tls_min_days > 0 && r->tls_expiry > 0 &&
	    r->tls_expiry - clock_wall_us() / 1000000 < (int64_t)t->tls_min_days * 86400) {
		http_fail(r, VANTAGE__REASON__REASON_CERT_EXPIRING,
		    "certificate expires in less than %u days", t->tls_min_days);
	}
}

static void
http_job_release(struct probe_http *h, struct http_job *job)
{
	free(job->body);
	job->body = NULL;
	job->result = NULL;
	job->target = NULL;
	job->next_free = h->free_jobs;
	h->free_jobs = job;
}

static void
http_on_done(CURL *easy, CURLcode rc, void *arg)
{
	struct probe_http *h = arg;
	struct http_job *job = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&job);
	job->rc = rc;
	h->finished(job->result, job, h->arg);
}

// The dispatch's second step (probe.h): the result, then the job back to
// the pool.
static void
http_fill(void *prober, void *job_arg, struct probe_result *r)
{
	struct http_job *job = job_arg;

	http_judge(job, job->rc);
	http_job_release(prober, job);
}

static void *
http_new(struct event_base *base, const char *source_ip, probe_finished_cb finished, void *arg)
{
	struct probe_http *h = xcalloc(1, sizeof(*h));

	h->finished = finished;
	h->arg = arg;
	h->source_ip = source_ip != NULL ? xstrdup(source_ip) : NULL;
	snprintf(h->user_agent, sizeof(h->user_agent), "vantage-agent/%s", vantage_version);
	h->ev = curl_ev_new(base, http_on_done, h);
	return h;
}

static void
http_free(void *prober)
{
	struct probe_http *h = prober;
	struct http_job *job, *next;

	if (h == NULL)
		return;
	// Jobs still in flight belong to abandoned probes: no result.
	for (job = h->all_jobs; job != NULL; job = next) {
		next = job->next_all;
		if (job->result != NULL)
			curl_ev_remove(h->ev, job->easy);
		curl_easy_cleanup(job->easy);
		free(job->body);
		free(job);
	}
	curl_ev_free(h->ev);
	free(h->source_ip);
	free(h);
}

static void
http_cancel(void *prober, struct probe_result *r)
{
	struct probe_http *h = prober;

	// Rare (a probe abandoned alone): a walk over the pool is enough.
	for (struct http_job *job = h->all_jobs; job != NULL; job = job->next_all) {
		if (job->result == r) {
			curl_ev_remove(h->ev, job->easy);
			http_job_release(h, job);
			return;
		}
	}
}

static struct http_job *
http_job_get(struct probe_http *h)
{
	struct http_job *job = h->free_jobs;

	if (job != NULL) {
		h->free_jobs = job->next_free;
		curl_easy_reset(job->easy);
	} else {
		job = xcalloc(1, sizeof(*job));
		job->next_all = h->all_jobs;
		h->all_jobs = job;
		job->easy = curl_easy_init();
		if (job->easy == NULL)
			fatalx("could not create a libcurl handle");
	}
	job->bytes = 0;
	job->body_len = 0;
	job->errbuf[0] = '\0';
	return job;
}

static int
http_start(void *prober, const struct probe_target *target, struct probe_result *r)
{
	struct probe_http *h = prober;
	const struct probe_http_spec *t = &target->spec.http;
	struct http_job *job = http_job_get(h);
	CURL *e = job->easy;
	long timeout = target->timeout_ms > 0 ? (long)target->timeout_ms : 10000;

	job->result = r;
	job->target = target;
	if (t->body_contains != NULL)
		job->body = xmalloc(BODY_KEEP);
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, job);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, job);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, t->follow_redirects ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
	if (strcmp(t->method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (strncmp(t->url, "https://", 8) == 0)
		curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
	if (h->source_ip != NULL)
		curl_easy_setopt(e, CURLOPT_INTERFACE, h->source_ip);
	if (curl_ev_add(h->ev, e) < 0) {
		http_job_release(h, job);
		r->outcome = VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR;
		r->reason = VANTAGE__REASON__REASON_INTERNAL;
		snprintf(r->error, sizeof(r->error), "could not start the probe");
		return -1;
	}
	return 0;
}

static void
http_spec_copy(struct probe_target *t, const Vantage__Target *src)
{
	struct probe_http_spec *spec = &t->spec.http;
	const Vantage__HttpSpec *in = src->http;

	if (in == NULL)
		return;
	spec->url = xstrdup(in->url);
	spec->method = xstrdup(in->method && *in->method ? in->method : "GET");
	spec->n_expect = in->n_expect_status < PROBE_HTTP_EXPECT_MAX ? in->n_expect_status :
								       PROBE_HTTP_EXPECT_MAX;
	for (size_t i = 0; i < spec->n_expect; i++)
		spec->expect_status[i] = in->expect_status[i];
	if (in->body_contains != NULL && *in->body_contains)
		spec->body_contains = xstrdup(in->body_contains);
	spec->max_latency_ms = in->max_latency_ms;
	spec->follow_redirects = in->follow_redirects;
	spec->tls_min_days = in->tls_min_days;
}

static void
http_spec_clear(struct probe_target *t)
{
	free(t->spec.http.url);
	free(t->spec.http.method);
	free(t->spec.http.body_contains);
}

const struct probe_ops probe_http_ops = {
	.name = "http",
	.spec_copy = http_spec_copy,
	.spec_clear = http_spec_clear,
	.new = http_new,
	.free = http_free,
	.start = http_start,
	.cancel = http_cancel,
	.fill = http_fill,
};
