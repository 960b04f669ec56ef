// SPDX-License-Identifier: Apache-2.0
//
// The alert sender (see alert.h): polls alert_outbox for due rows, keeps one
// queue per channel with at most one delivery in flight, delivers through
// common/http_client (webhooks) or a child process (exec), and records each
// outcome with one statement that also writes the incident timeline.  The
// outbox, not memory, is the truth: a row leaves it only when sent_at is
// set, so a crash, a reload or a lost database connection at worst sends an
// alert twice, never loses one.  Nothing here may block the loop: HTTP runs
// on curl's multi interface, the child's stdin is a non-blocking pipe, and
// children are reaped from SIGCHLD (with a poll as a safety net).
#include "alert.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "clock.h"
#include "http_client.h"
#include "log.h"
#include "version.h"
#include "xmalloc.h"

#define ALERT_POLL_INTERVAL_S 1
#define ALERT_BACKOFF_MIN_MS 1000u
#define ALERT_BACKOFF_MAX_MS (5u * 60 * 1000)
// last_error and the reasons in logs and the timeline.
#define ALERT_ERROR_MAX 256
// A row for a channel that is not configured (removed, or renamed) is
// looked at again this often, and at once after a reload that adds it.
#define ALERT_UNCONFIGURED_RETRY_S "60"
// Repeated failures of one channel are logged at most this often.
#define ALERT_WARN_EVERY_US (60 * INT64_C(1000000))
#define ALERT_SLACK_MAX 3000
#define ALERT_PD_SUMMARY_MAX 1024 // Events API v2 limit
// Retry times remembered for an exact wake-up; past this many the 1 s poll
// picks the rest up, at most a second late.
#define ALERT_WAKES_MAX 64

#define ALERT_NOT_CONFIGURED "channel not configured"

// Due rows, oldest first.  Channels with rows already in memory are left
// out ($1), so a hung channel's backlog cannot fill the LIMIT and starve the
// others, and no row is read twice.  A row waits while an earlier row of
// the same incident and channel is unsent: a resolve never overtakes its
// trigger, even when the trigger is in backoff.
static const char sql_poll[] =
    "SELECT o.id, o.incident_id, o.channel, o.event, o.payload::text, o.attempts"
    " FROM alert_outbox o"
    " WHERE o.sent_at IS NULL AND o.next_attempt_at <= now()"
    " AND o.channel <> ALL ($1::text[])"
    " AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.sent_at IS NULL"
    " AND p.incident_id = o.incident_id AND p.channel = o.channel AND p.id < o.id)"
    " ORDER BY o.id LIMIT 200";

// Guarded by sent_at IS NULL: the store runs a statement again after a lost
// connection, and a second run must change nothing.
static const char sql_sent[] =
    "WITH a AS (UPDATE alert_outbox SET sent_at = now(), attempts = attempts + 1,"
    " last_error = NULL WHERE id = $1 AND sent_at IS NULL"
    " RETURNING incident_id, channel, event)"
    " INSERT INTO incident_events (incident_id, at, kind, message)"
    " SELECT incident_id, now(), 'alert_sent',"
    " format('alert \"%s\" delivered to \"%s\"', event, channel) FROM a";

// Guarded by the attempts the row had, for the same reason.  Only the first
// failure goes to the timeline; the row keeps the latest error.
static const char sql_failed[] =
    "WITH a AS (UPDATE alert_outbox SET attempts = attempts + 1,"
    " next_attempt_at = now() + $3::bigint * interval '1 millisecond', last_error = $4"
    " WHERE id = $1 AND sent_at IS NULL AND attempts = $2::integer"
    " RETURNING incident_id, channel, event, attempts)"
    " INSERT INTO incident_events (incident_id, at, kind, message)"
    " SELECT incident_id, now(), 'alert_failed',"
    " format('alert \"%s\" to \"%s\" failed: %s (retrying)', event, channel, $4)"
    " FROM a WHERE attempts = 1";

static const char sql_unconfigured[] =
    "UPDATE alert_outbox SET last_error = '" ALERT_NOT_CONFIGURED "',"
    " next_attempt_at = now() + interval '" ALERT_UNCONFIGURED_RETRY_S " seconds'"
    " WHERE id = ANY ($1::bigint[]) AND sent_at IS NULL";

static const char sql_configured[] =
    "UPDATE alert_outbox SET next_attempt_at = now()"
    " WHERE sent_at IS NULL AND last_error = '" ALERT_NOT_CONFIGURED "'"
    " AND channel = ANY ($1::text[])";

struct alert_row {
	int64_t id;
	int64_t incident_id;
	int attempts;
	uint32_t retry_ms; // after a failed attempt: when it is due again
	char *event;
	char *payload;
	struct alert_row *next;
};

// One delivery in flight: a webhook POST or a child process.
struct alert_delivery {
	struct alert *owner;
	alert_delivery_cb cb;
	void *arg;
	struct http_request *http;
	// exec
	pid_t pid;
	int stdin_fd, stderr_fd;
	struct event *stdin_ev, *stderr_ev, *timer;
	char *body;
	size_t body_len, body_sent;
	char stderr_line[ALERT_ERROR_MAX];
	size_t stderr_len;
	bool stderr_line_done;
	bool timed_out;
	uint32_t timeout_ms;
	struct alert_delivery *prev, *next;
};

struct alert_channel {
	struct alert *owner;
	char *name;
	// NULL once the channel left the configuration; the object lives on
	// until its delivery in flight is recorded.
	const struct alert_conf *conf;
	struct alert_row *head, *tail; // waiting, in id order
	struct alert_row *busy;        // being delivered, or its outcome recorded
	struct alert_delivery *delivery;
	int64_t started_us;
	int64_t warned_us;
	unsigned unlogged_failures;
	unsigned failures; // since the last success
	bool failing;
	struct alert_channel *next;
};

struct alert {
	struct event_base *base;
	struct store *store;
	const struct agg_conf *conf;
	struct http_client *http;
	struct event *poll_timer;
	struct event *wake_timer;
	int64_t wakes_us[ALERT_WAKES_MAX]; // when failed rows are due again
	size_t n_wakes;
	struct event *sigchld;
	struct alert_channel *channels;
	struct alert_delivery *deliveries;
	bool polling, poll_again;
	int64_t unconfigured_warned_us;
	struct alert_stats stats;
};

// --- formatting ---

// Outside text made safe for last_error, logs and the timeline: printable
// ASCII only (PostgreSQL refuses invalid UTF-8), at most ALERT_ERROR_MAX.
static void
alert_printable(const char *in, size_t len, char *out, size_t outlen)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];

		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : (c == '\n' || c == '\t' ? ' ' : '?');
	}
	out[n] = '\0';
}

static bool
alert_is_recovery(const char *event)
{
	size_t len = strlen(event);

	return strcmp(event, "recovery") == 0 ||
	    (len > 9 && strcmp(event + len - 9, "_recovery") == 0);
}

static const char *
alert_label(const char *event)
{
	static const struct {
		const char *event, *label;
	} labels[] = {
		{ "outage", "OUTAGE" },
		{ "recovery", "RESOLVED outage" },
		{ "regional", "REGIONAL incident" },
		{ "regional_recovery", "RESOLVED regional incident" },
		{ "blind", "MONITORING BLIND" },
		{ "blind_recovery", "RESOLVED monitoring blind" },
		{ "flapping", "FLAPPING" },
	};

	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		if (strcmp(event, labels[i].event) == 0)
			return labels[i].label;
	return event;
}

static const char *
alert_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL && s[0] != '\0' ? s : NULL;
}

// "eu-west, us-east" from a JSON array of names; false if it is empty.
static bool
alert_put_list(struct buf *b, const char *what, const json_t *list)
{
	size_t i, n = 0;
	json_t *item;

	json_array_foreach(list, i, item) {
		if (!json_is_string(item))
			continue;
		buf_printf(b, "%s%s", n++ == 0 ? what : ", ", json_string_value(item));
	}
	return n > 0;
}

// One line for people: what, which target, where, since when.  Plain text,
// emoji-free, the same for Slack and the PagerDuty summary.
static void
alert_summary_line(struct buf *b, const json_t *p, const char *event, int64_t incident_id)
{
	const char *target = alert_str(p, "target"), *group = alert_str(p, "group");
	const char *started = alert_str(p, "started_at"), *detected = alert_str(p, "detected_at");
	const char *resolved = alert_str(p, "resolved_at"), *summary = alert_str(p, "summary");
	bool down, up;

	buf_printf(b, "[%s] %s", alert_label(event), target != NULL ? target : "(unknown target)");
	if (group != NULL)
		buf_printf(b, " (%s)", group);
	buf_puts(b, ":");
	down = alert_put_list(b, " down in ", json_object_get(p, "regions_down"));
	up = alert_put_list(b, down ? "; up in " : " up in ", json_object_get(p, "regions_up"));
	if (down || up)
		buf_puts(b, ";");
	if (started != NULL)
		buf_printf(b, " started %s", started);
	if (detected != NULL)
		buf_printf(b, "%s detected %s", started != NULL ? "," : "", detected);
	if (resolved != NULL)
		buf_printf(b, ", resolved %s", resolved);
	buf_printf(b, " (incident %" PRId64 ")", incident_id);
	if (summary != NULL)
		buf_printf(b, " - %s", summary);
}

// Slack renders &, < and > as markup; a line break would split the line.
static char *
alert_slack_text(const char *line, size_t max)
{
	struct buf b;
	char *out;

	buf_init(&b);
	for (const char *p = line; *p != '\0' && b.len < max; p++) {
		if (*p == '&')
			buf_puts(&b, "&amp;");
		else if (*p == '<')
			buf_puts(&b, "&lt;");
		else if (*p == '>')
			buf_puts(&b, "&gt;");
		else if ((unsigned char)*p < 0x20)
			buf_putc(&b, ' ');
		else
			buf_putc(&b, *p);
	}
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

// Cuts at most max bytes without splitting a UTF-8 sequence (jansson
// refuses a string that does).
static void
alert_utf8_cut(char *s, size_t max)
{
	size_t len = strlen(s);

	if (len <= max)
		return;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	s[max] = '\0';
}

static json_t *
alert_pagerduty(const struct alert_conf *ch, int64_t incident_id, const char *event, json_t *p)
{
	char dedup[64];
	char *summary;
	struct buf line;
	const char *ts = alert_str(p, "started_at");
	bool critical = strcmp(event, "outage") == 0 || strcmp(event, "flapping") == 0;
	json_t *doc, *payload;

	snprintf(dedup, sizeof(dedup), "vantage-incident-%" PRId64, incident_id);
	// Events API v2: a resolve needs only the key of what it resolves.
	if (alert_is_recovery(event))
		return json_pack("{s:s,s:s,s:s}", "routing_key",
		    ch->routing_key ? ch->routing_key : "", "event_action", "resolve", "dedup_key",
		    dedup);
	buf_init(&line);
	alert_summary_line(&line, p, event, incident_id);
	summary = xstrdup(buf_cstr(&line));
	buf_free(&line);
	alert_utf8_cut(summary, ALERT_PD_SUMMARY_MAX);
	payload = json_pack("{s:s,s:s,s:s,s:O}", "summary", summary, "source", "vantage",
	    "severity", critical ? "critical" : "warning", "custom_details", p);
	free(summary);
	if (payload == NULL)
		return NULL;
	if (ts != NULL)
		json_object_set_new(payload, "timestamp", json_string(ts));
	doc = json_pack("{s:s,s:s,s:s,s:s,s:o}", "routing_key",
	    ch->routing_key ? ch->routing_key : "", "event_action", "trigger", "dedup_key", dedup,
	    "client", "vantage", "payload", payload);
	return doc;
}

char *
alert_format_body(const struct alert_conf *ch, int64_t incident_id, const char *event,
    const char *event_json)
{
	json_t *p, *doc = NULL;
	json_error_t jerr;
	struct buf line;
	char *text = NULL, *slack;

	p = json_loads(event_json, 0, &jerr);
	if (p == NULL || !json_is_object(p))
		goto out;
	if (ch->is_exec || ch->format == ALERT_FORMAT_JSON) {
		// The outbox row's event is authoritative.
		json_object_set_new(p, "event", json_string(event));
		json_object_set_new(p, "incident_id", json_integer(incident_id));
		json_object_set_new(p, "channel", json_string(ch->name));
		doc = json_incref(p);
	} else if (ch->format == ALERT_FORMAT_SLACK) {
		buf_init(&line);
		alert_summary_line(&line, p, event, incident_id);
		slack = alert_slack_text(buf_cstr(&line), ALERT_SLACK_MAX);
		alert_utf8_cut(slack, ALERT_SLACK_MAX);
		buf_free(&line);
		doc = json_pack("{s:s}", "text", slack);
		free(slack);
	} else {
		doc = alert_pagerduty(ch, incident_id, event, p);
	}
	if (doc != NULL)
		text = json_dumps(doc, JSON_COMPACT);
out:
	json_decref(doc);
	json_decref(p);
	return text;
}

uint32_t
alert_backoff_ms(int attempts)
{
	if (attempts < 0)
		attempts = 0;
	if (attempts >= 9) // 2^9 s is past the cap; no shift overflow either
		return ALERT_BACKOFF_MAX_MS;
	return ALERT_BACKOFF_MIN_MS << attempts < ALERT_BACKOFF_MAX_MS ?
	    ALERT_BACKOFF_MIN_MS << attempts :
	    ALERT_BACKOFF_MAX_MS;
}

// --- deliveries (webhook and exec) ---

static void
alert_delivery_unlink(struct alert *a, struct alert_delivery *d)
{
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		a->deliveries = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	a->stats.in_flight--;
}

static void
alert_delivery_free(struct alert_delivery *d)
{
	if (d->stdin_ev != NULL)
		event_free(d->stdin_ev);
	if (d->stderr_ev != NULL)
		event_free(d->stderr_ev);
	if (d->timer != NULL)
		event_free(d->timer);
	if (d->stdin_fd >= 0)
		close(d->stdin_fd);
	if (d->stderr_fd >= 0)
		close(d->stderr_fd);
	free(d->body);
	free(d);
}

// Ends a delivery: unlinks it, then calls back (which may start the next).
static void
alert_delivery_done(struct alert_delivery *d, int status, const char *error)
{
	alert_delivery_cb cb = d->cb;
	void *arg = d->arg;
	char text[ALERT_ERROR_MAX + 1];

	alert_delivery_unlink(d->owner, d);
	snprintf(text, sizeof(text), "%s", error != NULL ? error : "");
	alert_delivery_free(d);
	cb(status, status == 0 ? NULL : text, arg);
}

static void
alert_on_http(const struct http_response *resp, void *arg)
{
	struct alert_delivery *d = arg;
	char error[ALERT_ERROR_MAX + 1], body[ALERT_ERROR_MAX + 1];

	d->http = NULL;
	if (resp->status >= 200 && resp->status < 300) {
		alert_delivery_done(d, 0, NULL);
		return;
	}
	if (resp->status < 0) {
		alert_printable(resp->error, strlen(resp->error), error, sizeof(error));
	} else {
		alert_printable(resp->body, resp->body_len, body, sizeof(body));
		snprintf(error, sizeof(error), "HTTP %ld%s%.200s", resp->status,
		    body[0] ? ": " : "", body);
	}
	alert_delivery_done(d, -1, error);
}

// In the child, between fork and exec: async-signal-safe calls only (the
// aggregator has other threads, whose locks may be held forever here).
noreturn static void
alert_exec_child(char *const argv[], int stdin_fd, int stderr_fd)
{
	static const char msg[] = "cannot execute the alert command\n";
	struct sigaction dfl;
	sigset_t none;
	int devnull;

	// Its own group, so that a timeout kills whatever it started too.
	setpgid(0, 0);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	devnull = open("/dev/null", O_WRONLY);
	if (dup2(stdin_fd, STDIN_FILENO) == -1 || devnull == -1 ||
	    dup2(devnull, STDOUT_FILENO) == -1 || dup2(stderr_fd, STDERR_FILENO) == -1)
		_exit(127);
	// Database, ZeroMQ and HTTP sockets are not the command's business.
	if (close_range(3, ~0U, 0) == -1) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	}
	execv(argv[0], argv);
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(127);
}

static void
alert_exec_close_stdin(struct alert_delivery *d)
{
	if (d->stdin_ev != NULL) {
		event_free(d->stdin_ev);
		d->stdin_ev = NULL;
	}
	if (d->stdin_fd >= 0) {
		close(d->stdin_fd);
		d->stdin_fd = -1;
	}
}

// Keeps the first line the command wrote to stderr: the reason it gives
// for failing, which goes to last_error.  Returns false at EOF or error.
static bool
alert_exec_read_stderr(struct alert_delivery *d)
{
	char chunk[1024];
	ssize_t n;

	for (;;) {
		n = read(d->stderr_fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		for (ssize_t i = 0; i < n && !d->stderr_line_done; i++) {
			if (chunk[i] == '\n' || d->stderr_len + 1 >= sizeof(d->stderr_line))
				d->stderr_line_done = true;
			else
				d->stderr_line[d->stderr_len++] = chunk[i];
		}
	}
}

static void
alert_exec_on_stderr(evutil_socket_t fd, short what, void *arg)
{
	struct alert_delivery *d = arg;

	if (alert_exec_read_stderr(d))
		return;
	event_free(d->stderr_ev);
	d->stderr_ev = NULL;
	close(d->stderr_fd);
	d->stderr_fd = -1;
}

// The pipe holds 64 KiB; a larger body, or a command slow to read, waits
// for the next writable event instead of blocking the loop.
static void
alert_exec_on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct alert_delivery *d = arg;
	ssize_t n;

	while (d->body_sent < d->body_len) {
		n = write(d->stdin_fd, d->body + d->body_sent, d->body_len - d->body_sent);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0)
			break; // EPIPE: it does not read; its exit status tells
		d->body_sent += (size_t)n;
	}
	alert_exec_close_stdin(d);
}

static void
alert_exec_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct alert_delivery *d = arg;

	d->timed_out = true;
	// The group first: a shell script's own children must not outlive it.
	if (kill(-d->pid, SIGKILL) == -1)
		kill(d->pid, SIGKILL);
	// Reaped from SIGCHLD like any exit.
}

// Collects the child if it has exited; then reports.
static void
alert_exec_reap(struct alert_delivery *d)
{
	char error[ALERT_ERROR_MAX + 1], line[ALERT_ERROR_MAX + 1];
	int status = 0;
	pid_t r;

	r = waitpid(d->pid, &status, WNOHANG);
	if (r == 0 || (r == -1 && errno == EINTR))
		return;
	if (d->stderr_fd >= 0)
		(void)alert_exec_read_stderr(d);
	alert_printable(d->stderr_line, d->stderr_len, line, sizeof(line));
	if (r == -1)
		snprintf(error, sizeof(error), "lost track of process %ld", (long)d->pid);
	else if (d->timed_out)
		snprintf(error, sizeof(error), "timed out after %u ms; process group killed",
		    d->timeout_ms);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		error[0] = '\0';
	else if (WIFEXITED(status))
		snprintf(error, sizeof(error), "exited with status %d%s%.200s", WEXITSTATUS(status),
		    line[0] ? ": " : "", line);
	else
		snprintf(error, sizeof(error), "killed by signal %d%s%.200s",
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0, line[0] ? ": " : "", line);
	alert_delivery_done(d, error[0] == '\0' ? 0 : -1, error);
}

// Every child of ours that exited; others (the embedded cluster's tools)
// are not ours to wait for.
static void
alert_reap_all(struct alert *a)
{
	struct alert_delivery *d, *next;

	for (d = a->deliveries; d != NULL; d = next) {
		next = d->next;
		if (d->pid > 0)
			alert_exec_reap(d);
	}
}

static void
alert_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	alert_reap_all(arg);
}

static int
alert_exec_start(struct alert *a, struct alert_delivery *d, char *const argv[], const char *body,
    char *err, size_t errlen)
{
	int in[2] = { -1, -1 }, errp[2] = { -1, -1 };
	struct timeval tv = clock_tv((int64_t)d->timeout_ms * 1000);

	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(errp, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	d->pid = fork();
	if (d->pid == -1) {
		snprintf(err, errlen, "cannot fork: %s", strerror(errno));
		goto fail;
	}
	if (d->pid == 0)
		alert_exec_child(argv, in[0], errp[1]);
	// Also here: a timeout right after fork must find the group.
	(void)setpgid(d->pid, d->pid);
	close(in[0]);
	close(errp[1]);
	d->stdin_fd = in[1];
	d->stderr_fd = errp[0];
	if (fcntl(d->stdin_fd, F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(d->stderr_fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("cannot make an alert pipe non-blocking");
	d->body_len = strlen(body);
	d->body = xstrdup(body);
	d->stdin_ev = event_new(a->base, d->stdin_fd, EV_WRITE | EV_PERSIST, alert_exec_on_stdin,
	    d);
	d->stderr_ev = event_new(a->base, d->stderr_fd, EV_READ | EV_PERSIST, alert_exec_on_stderr,
	    d);
	d->timer = evtimer_new(a->base, alert_exec_on_timeout, d);
	if (d->stdin_ev == NULL || d->stderr_ev == NULL || d->timer == NULL)
		fatalx("cannot watch an alert command");
	event_add(d->stdin_ev, NULL);
	event_add(d->stderr_ev, NULL);
	evtimer_add(d->timer, &tv);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return -1;
}

static struct alert_delivery *
alert_delivery_start(struct alert *a, const struct alert_conf *ch, const char *body,
    alert_delivery_cb cb, void *arg, char *err, size_t errlen)
{
	struct alert_delivery *d = xcalloc(1, sizeof(*d));

	d->owner = a;
	d->cb = cb;
	d->arg = arg;
	d->stdin_fd = d->stderr_fd = -1;
	d->timeout_ms = ch->timeout_ms;
	if (ch->is_exec) {
		if (alert_exec_start(a, d, ch->argv, body, err, errlen) < 0)
			goto fail;
	} else {
		d->http = http_client_post(a->http, ch->url, "application/json", body, strlen(body),
		    (long)ch->timeout_ms, alert_on_http, d);
		if (d->http == NULL) {
			snprintf(err, errlen, "cannot start an HTTP request");
			goto fail;
		}
	}
	d->next = a->deliveries;
	if (a->deliveries != NULL)
		a->deliveries->prev = d;
	a->deliveries = d;
	a->stats.in_flight++;
	return d;
fail:
	alert_delivery_free(d);
	return NULL;
}

int
alert_deliver(struct alert *a, const struct alert_conf *ch, const char *body, alert_delivery_cb cb,
    void *arg, char *err, size_t errlen)
{
	return alert_delivery_start(a, ch, body, cb, arg, err, errlen) != NULL ? 0 : -1;
}

// At exit: no callbacks.  A child is killed and waited for, which takes
// moments after SIGKILL, so that no orphan keeps paging after we are gone.
static void
alert_delivery_abandon(struct alert *a, struct alert_delivery *d)
{
	alert_delivery_unlink(a, d);
	if (d->http != NULL)
		http_client_cancel(a->http, d->http);
	if (d->pid > 0) {
		if (kill(-d->pid, SIGKILL) == -1)
			kill(d->pid, SIGKILL);
		while (waitpid(d->pid, NULL, 0) == -1 && errno == EINTR)
			;
	}
	alert_delivery_free(d);
}

// --- the outbox ---

static void alert_poll(struct alert *a);
static void alert_channel_next(struct alert_channel *ch);

static void
alert_row_free(struct alert_row *row)
{
	if (row == NULL)
		return;
	free(row->event);
	free(row->payload);
	free(row);
}

static struct alert_channel *
alert_channel_find(struct alert *a, const char *name)
{
	struct alert_channel *ch;

	for (ch = a->channels; ch != NULL; ch = ch->next)
		if (strcmp(ch->name, name) == 0)
			return ch;
	return NULL;
}

static void
alert_channel_drop_queue(struct alert_channel *ch)
{
	struct alert_row *row, *next;

	for (row = ch->head; row != NULL; row = next) {
		next = row->next;
		alert_row_free(row);
	}
	ch->head = ch->tail = NULL;
}

static void
alert_channel_free(struct alert *a, struct alert_channel *ch)
{
	struct alert_channel **pp;

	for (pp = &a->channels; *pp != NULL; pp = &(*pp)->next)
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	if (ch->delivery != NULL)
		alert_delivery_abandon(a, ch->delivery);
	alert_channel_drop_queue(ch);
	alert_row_free(ch->busy);
	free(ch->name);
	free(ch);
}

// Arms the wake timer for the earliest remembered retry time.
static void
alert_wake_arm(struct alert *a)
{
	int64_t first = INT64_MAX, now = clock_mono_us();
	struct timeval tv;

	for (size_t i = 0; i < a->n_wakes; i++)
		if (a->wakes_us[i] < first)
			first = a->wakes_us[i];
	if (first == INT64_MAX) {
		evtimer_del(a->wake_timer);
		return;
	}
	tv = clock_tv(first > now ? first - now : 0);
	evtimer_add(a->wake_timer, &tv);
}

// A failed row is due again after its backoff; polling then, rather than
// at the next tick, keeps the schedule at 1 s, 2 s, 4 s ... instead of
// adding up to a poll interval to each step.
static void
alert_wake_in(struct alert *a, uint32_t delay_ms)
{
	if (a->n_wakes == ALERT_WAKES_MAX)
		return;
	a->wakes_us[a->n_wakes++] = clock_mono_us() + (int64_t)delay_ms * 1000;
	alert_wake_arm(a);
}

static void
alert_on_recorded(int status, const struct store_result *r, void *arg)
{
	struct alert_channel *ch = arg;
	struct alert *a = ch->owner;
	struct alert_row *row = ch->busy;

	if (status < 0)
		log_warnx("cannot record the outcome of alert %" PRId64 " to channel \"%s\"; it "
			  "will be delivered again",
		    row->id, ch->name);
	else if (row->retry_ms > 0)
		// Armed now, after the database set next_attempt_at: the poll
		// then cannot come before the row is due.
		alert_wake_in(a, row->retry_ms);
	alert_row_free(row);
	ch->busy = NULL;
	if (ch->conf == NULL) {
		alert_channel_free(a, ch);
		return;
	}
	alert_channel_next(ch);
	// Drained: what waited behind this row (the next alert of the same
	// incident) may be due now.
	if (ch->busy == NULL)
		alert_poll(a);
}

static void
alert_warn_failure(struct alert_channel *ch, const struct alert_row *row, const char *error,
    uint32_t backoff_ms)
{
	int64_t now = clock_mono_us();

	ch->failures++;
	if (ch->failing && now - ch->warned_us < ALERT_WARN_EVERY_US) {
		ch->unlogged_failures++;
		return;
	}
	if (ch->unlogged_failures > 0)
		log_warnx("alert %" PRId64 " (\"%s\" of incident %" PRId64 ") to channel \"%s\" "
			  "failed on attempt %d: %s; retrying in %u s (%u more failures on this "
			  "channel since the last message)",
		    row->id, row->event, row->incident_id, ch->name, row->attempts + 1, error,
		    backoff_ms / 1000, ch->unlogged_failures);
	else
		log_warnx("alert %" PRId64 " (\"%s\" of incident %" PRId64 ") to channel \"%s\" "
			  "failed on attempt %d: %s; retrying in %u s",
		    row->id, row->event, row->incident_id, ch->name, row->attempts + 1, error,
		    backoff_ms / 1000);
	ch->failing = true;
	ch->warned_us = now;
	ch->unlogged_failures = 0;
}

static void
alert_record(struct alert_channel *ch, int status, const char *error)
{
	struct alert *a = ch->owner;
	struct alert_row *row = ch->busy;
	char id[24], attempts[16], backoff[16], text[ALERT_ERROR_MAX + 1];
	uint32_t backoff_ms;

	snprintf(id, sizeof(id), "%" PRId64, row->id);
	if (status == 0) {
		a->stats.sent++;
		if (ch->failing)
			log_info("alert channel \"%s\" delivers again after %u failed attempts",
			    ch->name, ch->failures);
		ch->failing = false;
		ch->failures = 0;
		ch->unlogged_failures = 0;
		store_query(a->store, sql_sent, 1, (const char *const[]){ id }, alert_on_recorded,
		    ch);
		return;
	}
	a->stats.failed_attempts++;
	alert_printable(error, strlen(error), text, sizeof(text));
	backoff_ms = alert_backoff_ms(row->attempts);
	row->retry_ms = backoff_ms;
	alert_warn_failure(ch, row, text, backoff_ms);
	snprintf(attempts, sizeof(attempts), "%d", row->attempts);
	snprintf(backoff, sizeof(backoff), "%" PRIu32, backoff_ms);
	store_query(a->store, sql_failed, 4, (const char *const[]){ id, attempts, backoff, text },
	    alert_on_recorded, ch);
}

static void
alert_on_delivered(int status, const char *error, void *arg)
{
	struct alert_channel *ch = arg;
	struct alert_row *row = ch->busy;

	if (status == 0)
		log_info("alert %" PRId64 " (\"%s\" of incident %" PRId64 ") delivered to channel "
			 "\"%s\" in %" PRId64 " ms",
		    row->id, row->event, row->incident_id, ch->name,
		    (clock_mono_us() - ch->started_us) / 1000);
	ch->delivery = NULL;
	alert_record(ch, status, error);
}

static void
alert_channel_next(struct alert_channel *ch)
{
	struct alert *a = ch->owner;
	struct alert_row *row = ch->head;
	char err[ALERT_ERROR_MAX];
	char *body;

	if (ch->busy != NULL || row == NULL || ch->conf == NULL)
		return;
	ch->head = row->next;
	if (ch->head == NULL)
		ch->tail = NULL;
	row->next = NULL;
	ch->busy = row;
	body = alert_format_body(ch->conf, row->incident_id, row->event, row->payload);
	if (body == NULL) {
		alert_record(ch, -1, "payload is not a JSON object");
		return;
	}
	ch->started_us = clock_mono_us();
	ch->delivery = alert_delivery_start(a, ch->conf, body, alert_on_delivered, ch, err,
	    sizeof(err));
	free(body);
	if (ch->delivery == NULL)
		alert_record(ch, -1, err);
}

static bool
alert_channel_has(const struct alert_channel *ch, int64_t id)
{
	if (ch->busy != NULL && ch->busy->id == id)
		return true;
	for (const struct alert_row *row = ch->head; row != NULL; row = row->next)
		if (row->id == id)
			return true;
	return false;
}

static bool
alert_parse_i64(const char *text, int64_t min, int64_t *out)
{
	char *end;
	long long v;

	if (text == NULL || text[0] == '\0')
		return false;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < min)
		return false;
	*out = v;
	return true;
}

// A row as the database gave it, checked like any outside bytes.
static struct alert_row *
alert_row_parse(const struct store_result *r, int i)
{
	struct alert_row *row;
	int64_t id, incident_id, attempts;
	const char *event = store_result_value(r, i, 3), *payload = store_result_value(r, i, 4);

	if (!alert_parse_i64(store_result_value(r, i, 0), 1, &id) ||
	    !alert_parse_i64(store_result_value(r, i, 1), 1, &incident_id) ||
	    !alert_parse_i64(store_result_value(r, i, 5), 0, &attempts) || attempts > INT32_MAX ||
	    event == NULL || payload == NULL || store_result_value(r, i, 2) == NULL)
		return NULL;
	row = xcalloc(1, sizeof(*row));
	row->id = id;
	row->incident_id = incident_id;
	row->attempts = (int)attempts;
	row->event = xstrdup(event);
	row->payload = xstrdup(payload);
	return row;
}

static void
alert_on_update(int status, const struct store_result *r, void *arg)
{
	// The store has logged a failure; the rows are looked at again later.
}

// "{a,b}" for a text[] parameter.  Channel names are [A-Za-z0-9._-] (agg_conf.c),
// but quoting costs nothing and keeps this correct if that ever changes.
static char *
alert_names_array(struct alert *a, bool busy_only)
{
	struct alert_channel *ch;
	struct buf b;
	char *out;

	buf_init(&b);
	buf_putc(&b, '{');
	for (ch = a->channels; ch != NULL; ch = ch->next) {
		if (busy_only ? ch->busy == NULL && ch->head == NULL : ch->conf == NULL)
			continue;
		if (b.len > 1)
			buf_putc(&b, ',');
		buf_putc(&b, '"');
		for (const char *p = ch->name; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(&b, '\\');
			buf_putc(&b, *p);
		}
		buf_putc(&b, '"');
	}
	buf_putc(&b, '}');
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

static void
alert_unconfigured(struct alert *a, const struct store_result *r, const int *rows, size_t n)
{
	int64_t now = clock_mono_us();
	struct buf ids;
	char *array;

	if (n == 0)
		return;
	if (now - a->unconfigured_warned_us >= ALERT_WARN_EVERY_US) {
		log_warnx("%zu %s for channel \"%s\"%s, which is not configured; kept in the "
			  "outbox and tried again every " ALERT_UNCONFIGURED_RETRY_S " s",
		    n, n > 1 ? "alerts wait" : "alert waits", store_result_value(r, rows[0], 2),
		    n > 1 ? " and maybe others" : "");
		a->unconfigured_warned_us = now;
	}
	buf_init(&ids);
	buf_putc(&ids, '{');
	for (size_t i = 0; i < n; i++)
		buf_printf(&ids, "%s%s", i > 0 ? "," : "", store_result_value(r, rows[i], 0));
	buf_putc(&ids, '}');
	array = xstrdup(buf_cstr(&ids));
	buf_free(&ids);
	store_query(a->store, sql_unconfigured, 1, (const char *const[]){ array }, alert_on_update,
	    a);
	free(array);
}

static void
alert_on_poll(int status, const struct store_result *r, void *arg)
{
	struct alert *a = arg;
	struct alert_channel *ch;
	struct alert_row *row;
	int n = status == 0 ? store_result_rows(r) : 0, *unconfigured;
	size_t n_unconfigured = 0;

	a->polling = false;
	unconfigured = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*unconfigured));
	for (int i = 0; i < n; i++) {
		const char *name = store_result_value(r, i, 2);

		row = alert_row_parse(r, i);
		if (row == NULL) {
			log_warnx("skipping a malformed alert_outbox row (id %s)",
			    store_result_value(r, i, 0) ? store_result_value(r, i, 0) : "NULL");
			continue;
		}
		ch = alert_channel_find(a, name);
		if (ch == NULL || ch->conf == NULL) {
			unconfigured[n_unconfigured++] = i;
			alert_row_free(row);
			continue;
		}
		if (alert_channel_has(ch, row->id)) {
			alert_row_free(row);
			continue;
		}
		if (ch->tail != NULL)
			ch->tail->next = row;
		else
			ch->head = row;
		ch->tail = row;
	}
	alert_unconfigured(a, r, unconfigured, n_unconfigured);
	free(unconfigured);
	for (ch = a->channels; ch != NULL; ch = ch->next)
		alert_channel_next(ch);
	if (a->poll_again) {
		a->poll_again = false;
		alert_poll(a);
	}
}

static void
alert_poll(struct alert *a)
{
	char *busy;

	if (a->store == NULL)
		return;
	if (a->polling) {
		a->poll_again = true;
		return;
	}
	a->polling = true;
	busy = alert_names_array(a, true);
	store_query(a->store, sql_poll, 1, (const char *const[]){ busy }, alert_on_poll, a);
	free(busy);
}

static void
alert_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct alert *a = arg;

	// A SIGCHLD coalesced with another, or delivered while libevent was
	// busy, must not leave a delivery waiting forever.
	alert_reap_all(a);
	alert_poll(a);
}

static void
alert_on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct alert *a = arg;
	int64_t now = clock_mono_us();
	size_t i = 0;

	while (i < a->n_wakes) {
		if (a->wakes_us[i] <= now)
			a->wakes_us[i] = a->wakes_us[--a->n_wakes];
		else
			i++;
	}
	alert_wake_arm(a);
	alert_poll(a);
}

void
alert_kick(struct alert *a)
{
	if (a != NULL)
		alert_poll(a);
}

// Channels follow the configuration by name: a channel kept keeps its
// queue (formatted with its new settings), a removed one drops its queue
// (rows stay in the outbox) and finishes its delivery in flight.
static void
alert_sync_channels(struct alert *a, const struct agg_conf *conf)
{
	struct alert_channel *ch, *next;
	size_t i;

	for (ch = a->channels; ch != NULL; ch = ch->next)
		ch->conf = NULL;
	for (i = 0; i < conf->n_alerts; i++) {
		ch = alert_channel_find(a, conf->alerts[i].name);
		if (ch == NULL) {
			ch = xcalloc(1, sizeof(*ch));
			ch->owner = a;
			ch->name = xstrdup(conf->alerts[i].name);
			ch->next = a->channels;
			a->channels = ch;
		}
		ch->conf = &conf->alerts[i];
	}
	for (ch = a->channels; ch != NULL; ch = next) {
		next = ch->next;
		if (ch->conf != NULL)
			continue;
		alert_channel_drop_queue(ch);
		if (ch->busy == NULL)
			alert_channel_free(a, ch);
	}
	a->conf = conf;
}

struct alert *
alert_new(struct event_base *base, struct store *store, const struct agg_conf *conf)
{
	struct alert *a = xcalloc(1, sizeof(*a));
	struct timeval every = { ALERT_POLL_INTERVAL_S, 0 };
	char user_agent[96];

	a->base = base;
	a->store = store;
	snprintf(user_agent, sizeof(user_agent), "vantage-aggregator/%s", vantage_version);
	a->http = http_client_new(base, user_agent);
	a->sigchld = evsignal_new(base, SIGCHLD, alert_on_sigchld, a);
	a->poll_timer = event_new(base, -1, EV_PERSIST, alert_on_timer, a);
	a->wake_timer = evtimer_new(base, alert_on_wake, a);
	if (a->sigchld == NULL || a->poll_timer == NULL || a->wake_timer == NULL)
		fatalx("cannot create the alert sender's events");
	event_add(a->sigchld, NULL);
	event_add(a->poll_timer, &every);
	alert_sync_channels(a, conf);
	alert_poll(a);
	return a;
}

void
alert_reconfigure(struct alert *a, const struct agg_conf *conf)
{
	char *names;

	alert_sync_channels(a, conf);
	if (a->store == NULL)
		return;
	// Rows parked for a channel that was missing go out now if it is back.
	names = alert_names_array(a, false);
	store_query(a->store, sql_configured, 1, (const char *const[]){ names }, alert_on_update,
	    a);
	free(names);
	alert_poll(a);
}

void
alert_free(struct alert *a)
{
	if (a == NULL)
		return;
	while (a->channels != NULL)
		alert_channel_free(a, a->channels);
	// alert_deliver calls of tests, not tied to a channel.
	while (a->deliveries != NULL)
		alert_delivery_abandon(a, a->deliveries);
	http_client_free(a->http);
	event_free(a->sigchld);
	event_free(a->poll_timer);
	event_free(a->wake_timer);
	free(a);
}

void
alert_get_stats(const struct alert *a, struct alert_stats *out)
{
	*out = a->stats;
}
