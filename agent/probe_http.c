// SPDX-License-Identifier: Apache-2.0
//
// HTTP(S) probes with libcurl's multi_socket API driven by the agent's one
// libevent loop (the pattern of curl's docs/examples/multi-event.c): curl
// tells us which sockets to watch and when to time out, libevent tells curl
// when they are ready.  No thread per probe, no blocking call.  Each probe
// measures a fresh connection (no reuse, no DNS cache) so that every phase
// is really measured every time.  Easy handles are pooled and reused.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "log.h"
#include "probe.h"
#include "xmalloc.h"
#include "version.h"

#define BODY_KEEP (64 * 1024) // bytes kept for body_contains

struct http_job {
	struct probe_http *owner;
	CURL *easy;
	struct probe_result *result;
	const struct probe_target *target;
	char errbuf[CURL_ERROR_SIZE];
	char *body; // first BODY_KEEP bytes, only with body_contains
	size_t body_len;
	uint64_t bytes;
	struct http_job *next_free;
	struct http_job *next_all; // every job ever made, for cleanup
};

struct http_sock {
	struct event *ev;
	curl_socket_t fd;
};

struct probe_http {
	struct event_base *base;
	// Watched sockets by descriptor.  The table, not curl's socketp, is
	// the truth: it lets the close callback drop a socket's event before
	// the descriptor is closed and its number reused (epoll would
	// otherwise lose the registration of the next socket with that number).
	struct http_sock **socks;
	size_t n_socks;
	CURLM *multi;
	struct event *timer;
	char *source_ip;
	probe_http_done_cb done;
	void *arg;
	struct http_job *free_jobs;
	struct http_job *all_jobs;
	char user_agent[96];
};

static void http_check_done(struct probe_http *h);

static void
http_on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct probe_http *h = arg;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	http_check_done(h);
}

static void
http_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct probe_http *h = arg;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_check_done(h);
}

static void
http_sock_drop(struct probe_http *h, curl_socket_t s)
{
	if (s < 0 || (size_t)s >= h->n_socks || h->socks[s] == NULL)
		return;
	event_free(h->socks[s]->ev);
	free(h->socks[s]);
	h->socks[s] = NULL;
}

static int
http_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct probe_http *h = userp;
	struct http_sock *sock;
	short kind;

	if (s < 0)
		return -1;
	if (what == CURL_POLL_REMOVE) {
		http_sock_drop(h, s);
		return 0;
	}
	if ((size_t)s >= h->n_socks) {
		size_t n = h->n_socks ? h->n_socks : 64;

		while (n <= (size_t)s)
			n *= 2;
		h->socks = xreallocarray(h->socks, n, sizeof(*h->socks));
		memset(h->socks + h->n_socks, 0, (n - h->n_socks) * sizeof(*h->socks));
		h->n_socks = n;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	sock = h->socks[s];
	if (sock == NULL) {
		sock = xcalloc(1, sizeof(*sock));
		sock->fd = s;
		h->socks[s] = sock;
	} else {
		event_free(sock->ev);
	}
	sock->ev = event_new(h->base, s, kind, http_on_socket_event, h);
	event_add(sock->ev, NULL);
	return 0;
}

static int
http_close_cb(void *clientp, curl_socket_t s)
{
	http_sock_drop(clientp, s);
	return close(s);
}

static int
http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct probe_http *h = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(h->timer, &tv);
	return 0;
}

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
http_status_expected(const struct probe_target *t, uint32_t status)
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
	const struct probe_target *t = job->target;
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
	curl_multi_remove_handle(h->multi, job->easy);
	free(job->body);
	job->body = NULL;
	job->result = NULL;
	job->target = NULL;
	job->next_free = h->free_jobs;
	h->free_jobs = job;
}

static void
http_check_done(struct probe_http *h)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct http_job *job = NULL;
		struct probe_result *r;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&job);
		http_judge(job, msg->data.result);
		r = job->result;
		http_job_release(h, job);
		h->done(r, h->arg);
	}
}

struct probe_http *
probe_http_new(struct event_base *base, const char *source_ip, probe_http_done_cb done, void *arg)
{
	struct probe_http *h = xcalloc(1, sizeof(*h));

	h->base = base;
	h->done = done;
	h->arg = arg;
	h->source_ip = source_ip != NULL ? xstrdup(source_ip) : NULL;
	snprintf(h->user_agent, sizeof(h->user_agent), "vantage-agent/%s", vantage_version);
	h->multi = curl_multi_init();
	if (h->multi == NULL)
		fatalx("cannot initialise libcurl");
	h->timer = evtimer_new(base, http_on_timer, h);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return h;
}

void
probe_http_free(struct probe_http *h)
{
	struct http_job *job, *next;

	if (h == NULL)
		return;
	// Jobs still in flight belong to abandoned probes: no result.
	for (job = h->all_jobs; job != NULL; job = next) {
		next = job->next_all;
		if (job->result != NULL)
			curl_multi_remove_handle(h->multi, job->easy);
		curl_easy_cleanup(job->easy);
		free(job->body);
		free(job);
	}
	curl_multi_cleanup(h->multi);
	for (size_t i = 0; i < h->n_socks; i++)
		http_sock_drop(h, (curl_socket_t)i);
	free(h->socks);
	event_free(h->timer);
	free(h->source_ip);
	free(h);
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
		job->owner = h;
		job->next_all = h->all_jobs;
		h->all_jobs = job;
		job->easy = curl_easy_init();
		if (job->easy == NULL)
			fatalx("cannot create a libcurl handle");
	}
	job->bytes = 0;
	job->body_len = 0;
	job->errbuf[0] = '\0';
	return job;
}

int
probe_http_start(struct probe_http *h, const struct probe_target *t, struct probe_result *r)
{
	struct http_job *job = http_job_get(h);
	CURL *e = job->easy;
	long timeout = t->timeout_ms > 0 ? (long)t->timeout_ms : 10000;

	job->result = r;
	job->target = t;
	if (t->body_contains != NULL)
		job->body = xmalloc(BODY_KEEP);
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, job);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, job);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, http_close_cb);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, h);
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
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		http_job_release(h, job);
		r->outcome = VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR;
		r->reason = VANTAGE__REASON__REASON_INTERNAL;
		snprintf(r->error, sizeof(r->error), "cannot start the probe");
		return -1;
	}
	return 0;
}
