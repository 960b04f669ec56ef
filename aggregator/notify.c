// SPDX-License-Identifier: Apache-2.0
//
// The notify outbox (see notify.h): polls alert_outbox for due rows, keeps
// one queue per channel with at most one delivery in flight, hands each
// body to its channel kind (a table: webhook POST through
// common/http_client, exec of a command through common/spawn), and
// records each outcome with one statement that also writes the incident
// timeline.  The outbox, not memory, is the truth: a row leaves it only
// when sent_at is set, so a crash, a reload or a lost database connection
// at worst sends an alert twice, never loses one.  Nothing here may block
// the loop: HTTP runs on curl's multi interface, and children are fed and
// reaped by common/spawn on the loop.  What a channel receives is
// alert_format's business, not this file's.
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "alert_format.h"
#include "buf.h"
#include "clock.h"
#include "http_client.h"
#include "log.h"
#include "spawn.h"
#include "version.h"
#include "xmalloc.h"

#define NOTIFY_POLL_INTERVAL_S 1
#define NOTIFY_BACKOFF_MIN_MS 1000u
#define NOTIFY_BACKOFF_MAX_MS (5u * 60 * 1000)
// last_error and the reasons in logs and the timeline.
#define NOTIFY_ERROR_MAX 256
// A row for a channel that is not configured (removed, or renamed) is
// looked at again this often, and at once after a reload that adds it.
#define NOTIFY_UNCONFIGURED_RETRY_S "60"
// Repeated failures of one channel are logged at most this often.
#define NOTIFY_WARN_EVERY_US (60 * INT64_C(1000000))
// Retry times remembered for an exact wake-up; past this many the 1 s poll
// picks the rest up, at most a second late.
#define NOTIFY_WAKES_MAX 64

#define NOTIFY_NOT_CONFIGURED "channel not configured"

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
    "UPDATE alert_outbox SET last_error = '" NOTIFY_NOT_CONFIGURED "',"
    " next_attempt_at = now() + interval '" NOTIFY_UNCONFIGURED_RETRY_S " seconds'"
    " WHERE id = ANY ($1::bigint[]) AND sent_at IS NULL";

static const char sql_configured[] =
    "UPDATE alert_outbox SET next_attempt_at = now()"
    " WHERE sent_at IS NULL AND last_error = '" NOTIFY_NOT_CONFIGURED "'"
    " AND channel = ANY ($1::text[])";

struct notify_row {
	int64_t id;
	int64_t incident_id;
	int attempts;
	uint32_t retry_ms; // after a failed attempt: when it is due again
	char *event;
	char *payload;
	struct notify_row *next;
};

struct notify_kind;

// One delivery in flight, of one of the kinds below.
struct notify_delivery {
	struct notify *owner;
	const struct notify_kind *kind;
	notify_delivery_cb cb;
	void *arg;
	void *handle; // the kind's: a struct http_request or a struct spawn
	uint32_t timeout_ms;
	struct notify_delivery *prev, *next;
};

struct notify_channel {
	struct notify *owner;
	char *name;
	// NULL once the channel left the configuration; the object lives on
	// until its delivery in flight is recorded.
	const struct alert_conf *conf;
	struct notify_row *head, *tail; // waiting, in id order
	struct notify_row *busy;        // being delivered, or its outcome recorded
	struct notify_delivery *delivery;
	int64_t started_us;
	int64_t warned_us;
	unsigned unlogged_failures;
	unsigned failures; // since the last success
	bool failing;
	struct notify_channel *next;
};

struct notify {
	struct event_base *base;
	struct store *store;
	const struct agg_conf *conf;
	struct http_client *http;
	struct event *poll_timer;
	struct event *wake_timer;
	int64_t wakes_us[NOTIFY_WAKES_MAX]; // when failed rows are due again
	size_t n_wakes;
	struct notify_channel *channels;
	struct notify_delivery *deliveries;
	bool polling, poll_again;
	int64_t unconfigured_warned_us;
	struct notify_stats stats;
};

// Outside text made safe for last_error, logs and the timeline: printable
// ASCII only (PostgreSQL refuses invalid UTF-8), at most NOTIFY_ERROR_MAX.
static void
notify_printable(const char *in, size_t len, char *out, size_t outlen)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];

		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : (c == '\n' || c == '\t' ? ' ' : '?');
	}
	out[n] = '\0';
}

uint32_t
notify_backoff_ms(int attempts)
{
	if (attempts < 0)
		attempts = 0;
	if (attempts >= 9) // 2^9 s is past the cap; no shift overflow either
		return NOTIFY_BACKOFF_MAX_MS;
	return NOTIFY_BACKOFF_MIN_MS << attempts < NOTIFY_BACKOFF_MAX_MS ?
	    NOTIFY_BACKOFF_MIN_MS << attempts :
	    NOTIFY_BACKOFF_MAX_MS;
}

// --- deliveries: one small table of channel kinds ---

static void
notify_delivery_unlink(struct notify *n, struct notify_delivery *d)
{
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		n->deliveries = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	n->stats.in_flight--;
}

// Ends a delivery: unlinks and frees it, then calls back (which may start
// the next).
static void
notify_delivery_done(struct notify_delivery *d, int status, const char *error)
{
	notify_delivery_cb cb = d->cb;
	void *arg = d->arg;
	char text[NOTIFY_ERROR_MAX + 1];

	notify_delivery_unlink(d->owner, d);
	snprintf(text, sizeof(text), "%s", error != NULL ? error : "");
	free(d);
	cb(status, status == 0 ? NULL : text, arg);
}

static void
notify_webhook_done(const struct http_response *resp, void *arg)
{
	struct notify_delivery *d = arg;
	char error[NOTIFY_ERROR_MAX + 1], body[NOTIFY_ERROR_MAX + 1];

	d->handle = NULL;
	if (resp->status >= 200 && resp->status < 300) {
		notify_delivery_done(d, 0, NULL);
		return;
	}
	if (resp->status < 0) {
		notify_printable(resp->error, strlen(resp->error), error, sizeof(error));
	} else {
		notify_printable(resp->body, resp->body_len, body, sizeof(body));
		snprintf(error, sizeof(error), "HTTP %ld%s%.200s", resp->status,
		    body[0] ? ": " : "", body);
	}
	notify_delivery_done(d, -1, error);
}

static int
notify_webhook_start(struct notify_delivery *d, const struct alert_conf *ch, const char *body,
    char *err, size_t errlen)
{
	d->handle = http_client_post(d->owner->http, ch->url, "application/json", body,
	    strlen(body), (long)ch->timeout_ms, notify_webhook_done, d);
	if (d->handle == NULL) {
		snprintf(err, errlen, "could not start an HTTP request");
		return -1;
	}
	return 0;
}

static void
notify_webhook_cancel(struct notify_delivery *d)
{
	http_client_cancel(d->owner->http, d->handle);
}

static void
notify_exec_done(const struct spawn_result *r, void *arg)
{
	struct notify_delivery *d = arg;
	char error[NOTIFY_ERROR_MAX + 1], line[NOTIFY_ERROR_MAX + 1];
	int status = r->wait_status;

	d->handle = NULL;
	notify_printable(r->stderr_line, r->stderr_len, line, sizeof(line));
	if (r->lost)
		snprintf(error, sizeof(error), "lost track of process %ld", (long)r->pid);
	else if (r->timed_out)
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
	notify_delivery_done(d, error[0] == '\0' ? 0 : -1, error);
}

// The command gets the body on stdin, in a process group of its own so
// that a timeout also kills whatever it started.
static int
notify_exec_start(struct notify_delivery *d, const struct alert_conf *ch, const char *body,
    char *err, size_t errlen)
{
	const struct spawn_cmd cmd = {
		.argv = ch->argv,
		.own_group = true,
		.exec_error = "cannot execute the alert command",
	};

	d->handle = spawn_start(d->owner->base, &cmd, body, strlen(body), ch->timeout_ms,
	    notify_exec_done, d, err, errlen);
	return d->handle != NULL ? 0 : -1;
}

static void
notify_exec_cancel(struct notify_delivery *d)
{
	spawn_abandon(d->handle);
}

static bool
notify_is_exec(const struct alert_conf *ch)
{
	return ch->is_exec;
}

static bool
notify_is_webhook(const struct alert_conf *ch)
{
	return !ch->is_exec && ch->url != NULL;
}

// How a body reaches a channel of each kind.  start returns 0 and calls
// notify_delivery_done exactly once later, from the loop, or returns -1
// with err set; cancel stops a delivery in flight without calling back.
// Status-page subscribers add their kinds (SMTP) here; the outbox above
// them stays the same.
static const struct notify_kind {
	const char *name;
	bool (*matches)(const struct alert_conf *ch);
	int (*start)(struct notify_delivery *d, const struct alert_conf *ch, const char *body,
	    char *err, size_t errlen);
	void (*cancel)(struct notify_delivery *d);
} notify_kinds[] = {
	{ "exec", notify_is_exec, notify_exec_start, notify_exec_cancel },
	{ "webhook", notify_is_webhook, notify_webhook_start, notify_webhook_cancel },
};

static const struct notify_kind *
notify_kind_of(const struct alert_conf *ch)
{
	for (size_t i = 0; i < sizeof(notify_kinds) / sizeof(notify_kinds[0]); i++)
		if (notify_kinds[i].matches(ch))
			return &notify_kinds[i];
	return NULL;
}

static struct notify_delivery *
notify_delivery_start(struct notify *n, const struct alert_conf *ch, const char *body,
    notify_delivery_cb cb, void *arg, char *err, size_t errlen)
{
	const struct notify_kind *kind = notify_kind_of(ch);
	struct notify_delivery *d;

	if (kind == NULL) {
		snprintf(err, errlen, "channel \"%s\" has no way of delivery", ch->name);
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->owner = n;
	d->kind = kind;
	d->cb = cb;
	d->arg = arg;
	d->timeout_ms = ch->timeout_ms;
	if (kind->start(d, ch, body, err, errlen) < 0) {
		free(d);
		return NULL;
	}
	d->next = n->deliveries;
	if (n->deliveries != NULL)
		n->deliveries->prev = d;
	n->deliveries = d;
	n->stats.in_flight++;
	return d;
}

int
notify_deliver(struct notify *n, const struct alert_conf *ch, const char *body,
    notify_delivery_cb cb, void *arg, char *err, size_t errlen)
{
	return notify_delivery_start(n, ch, body, cb, arg, err, errlen) != NULL ? 0 : -1;
}

// At exit: no callbacks.  A child is killed and waited for, which takes
// moments after SIGKILL, so that no orphan keeps paging after we are gone.
static void
notify_delivery_abandon(struct notify *n, struct notify_delivery *d)
{
	notify_delivery_unlink(n, d);
	if (d->handle != NULL)
		d->kind->cancel(d);
	free(d);
}

// --- the outbox ---

static void notify_poll(struct notify *n);
static void notify_channel_next(struct notify_channel *ch);

static void
notify_row_free(struct notify_row *row)
{
	if (row == NULL)
		return;
	free(row->event);
	free(row->payload);
	free(row);
}

static struct notify_channel *
notify_channel_find(struct notify *n, const char *name)
{
	struct notify_channel *ch;

	for (ch = n->channels; ch != NULL; ch = ch->next)
		if (strcmp(ch->name, name) == 0)
			return ch;
	return NULL;
}

static void
notify_channel_drop_queue(struct notify_channel *ch)
{
	struct notify_row *row, *next;

	for (row = ch->head; row != NULL; row = next) {
		next = row->next;
		notify_row_free(row);
	}
	ch->head = ch->tail = NULL;
}

static void
notify_channel_free(struct notify *n, struct notify_channel *ch)
{
	struct notify_channel **pp;

	for (pp = &n->channels; *pp != NULL; pp = &(*pp)->next)
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	if (ch->delivery != NULL)
		notify_delivery_abandon(n, ch->delivery);
	notify_channel_drop_queue(ch);
	notify_row_free(ch->busy);
	free(ch->name);
	free(ch);
}

// Arms the wake timer for the earliest remembered retry time.
static void
notify_wake_arm(struct notify *n)
{
	int64_t first = INT64_MAX, now = clock_mono_us();
	struct timeval tv;

	for (size_t i = 0; i < n->n_wakes; i++)
		if (n->wakes_us[i] < first)
			first = n->wakes_us[i];
	if (first == INT64_MAX) {
		evtimer_del(n->wake_timer);
		return;
	}
	tv = clock_tv(first > now ? first - now : 0);
	evtimer_add(n->wake_timer, &tv);
}

// A failed row is due again after its backoff; polling then, rather than
// at the next tick, keeps the schedule at 1 s, 2 s, 4 s ... instead of
// adding up to a poll interval to each step.
static void
notify_wake_in(struct notify *n, uint32_t delay_ms)
{
	if (n->n_wakes == NOTIFY_WAKES_MAX)
		return;
	n->wakes_us[n->n_wakes++] = clock_mono_us() + (int64_t)delay_ms * 1000;
	notify_wake_arm(n);
}

static void
notify_on_recorded(int status, const struct store_result *r, void *arg)
{
	struct notify_channel *ch = arg;
	struct notify *n = ch->owner;
	struct notify_row *row = ch->busy;

	if (status < 0)
		log_warnx("could not record the outcome of alert %" PRId64 " to channel \"%s\"; it "
			  "will be delivered again",
		    row->id, ch->name);
	else if (row->retry_ms > 0)
		// Armed now, after the database set next_attempt_at: the poll
		// then cannot come before the row is due.
		notify_wake_in(n, row->retry_ms);
	notify_row_free(row);
	ch->busy = NULL;
	if (ch->conf == NULL) {
		notify_channel_free(n, ch);
		return;
	}
	notify_channel_next(ch);
	// Drained: what waited behind this row (the next alert of the same
	// incident) may be due now.
	if (ch->busy == NULL)
		notify_poll(n);
}

static void
notify_warn_failure(struct notify_channel *ch, const struct notify_row *row, const char *error,
    uint32_t backoff_ms)
{
	int64_t now = clock_mono_us();

	ch->failures++;
	if (ch->failing && now - ch->warned_us < NOTIFY_WARN_EVERY_US) {
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
notify_record(struct notify_channel *ch, int status, const char *error)
{
	struct notify *n = ch->owner;
	struct notify_row *row = ch->busy;
	char id[24], attempts[16], backoff[16], text[NOTIFY_ERROR_MAX + 1];
	uint32_t backoff_ms;

	snprintf(id, sizeof(id), "%" PRId64, row->id);
	if (status == 0) {
		n->stats.sent++;
		if (ch->failing)
			log_info("alert channel \"%s\" delivers again after %u failed attempts",
			    ch->name, ch->failures);
		ch->failing = false;
		ch->failures = 0;
		ch->unlogged_failures = 0;
		store_query(n->store, sql_sent, 1, (const char *const[]){ id }, notify_on_recorded,
		    ch);
		return;
	}
	n->stats.failed_attempts++;
	notify_printable(error, strlen(error), text, sizeof(text));
	backoff_ms = notify_backoff_ms(row->attempts);
	row->retry_ms = backoff_ms;
	notify_warn_failure(ch, row, text, backoff_ms);
	snprintf(attempts, sizeof(attempts), "%d", row->attempts);
	snprintf(backoff, sizeof(backoff), "%" PRIu32, backoff_ms);
	store_query(n->store, sql_failed, 4, (const char *const[]){ id, attempts, backoff, text },
	    notify_on_recorded, ch);
}

static void
notify_on_delivered(int status, const char *error, void *arg)
{
	struct notify_channel *ch = arg;
	struct notify_row *row = ch->busy;

	if (status == 0)
		log_info("alert %" PRId64 " (\"%s\" of incident %" PRId64 ") delivered to channel "
			 "\"%s\" in %" PRId64 " ms",
		    row->id, row->event, row->incident_id, ch->name,
		    (clock_mono_us() - ch->started_us) / 1000);
	ch->delivery = NULL;
	notify_record(ch, status, error);
}

static void
notify_channel_next(struct notify_channel *ch)
{
	struct notify *n = ch->owner;
	struct notify_row *row = ch->head;
	char err[NOTIFY_ERROR_MAX];
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
		notify_record(ch, -1, "payload is not a JSON object");
		return;
	}
	ch->started_us = clock_mono_us();
	ch->delivery = notify_delivery_start(n, ch->conf, body, notify_on_delivered, ch, err,
	    sizeof(err));
	free(body);
	if (ch->delivery == NULL)
		notify_record(ch, -1, err);
}

static bool
notify_channel_has(const struct notify_channel *ch, int64_t id)
{
	if (ch->busy != NULL && ch->busy->id == id)
		return true;
	for (const struct notify_row *row = ch->head; row != NULL; row = row->next)
		if (row->id == id)
			return true;
	return false;
}

static bool
notify_parse_i64(const char *text, int64_t min, int64_t *out)
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
static struct notify_row *
notify_row_parse(const struct store_result *r, int i)
{
	struct notify_row *row;
	int64_t id, incident_id, attempts;
	const char *event = store_result_value(r, i, 3), *payload = store_result_value(r, i, 4);

	if (!notify_parse_i64(store_result_value(r, i, 0), 1, &id) ||
	    !notify_parse_i64(store_result_value(r, i, 1), 1, &incident_id) ||
	    !notify_parse_i64(store_result_value(r, i, 5), 0, &attempts) || attempts > INT32_MAX ||
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
notify_on_update(int status, const struct store_result *r, void *arg)
{
	// The store has logged a failure; the rows are looked at again later.
}

// "{a,b}" for a text[] parameter.  Channel names are [A-Za-z0-9._-] (agg_conf.c),
// but quoting costs nothing and keeps this correct if that ever changes.
static char *
notify_names_array(struct notify *n, bool busy_only)
{
	struct notify_channel *ch;
	struct buf b;
	char *out;

	buf_init(&b);
	buf_putc(&b, '{');
	for (ch = n->channels; ch != NULL; ch = ch->next) {
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
notify_unconfigured(struct notify *n, const struct store_result *r, const int *rows, size_t n_rows)
{
	int64_t now = clock_mono_us();
	struct buf ids;
	char *array;

	if (n_rows == 0)
		return;
	if (now - n->unconfigured_warned_us >= NOTIFY_WARN_EVERY_US) {
		log_warnx("%zu %s for channel \"%s\"%s, which is not configured; kept in the "
			  "outbox and tried again every " NOTIFY_UNCONFIGURED_RETRY_S " s",
		    n_rows, n_rows > 1 ? "alerts wait" : "alert waits",
		    store_result_value(r, rows[0], 2), n_rows > 1 ? " and maybe others" : "");
		n->unconfigured_warned_us = now;
	}
	buf_init(&ids);
	buf_putc(&ids, '{');
	for (size_t i = 0; i < n_rows; i++)
		buf_printf(&ids, "%s%s", i > 0 ? "," : "", store_result_value(r, rows[i], 0));
	buf_putc(&ids, '}');
	array = xstrdup(buf_cstr(&ids));
	buf_free(&ids);
	store_query(n->store, sql_unconfigured, 1, (const char *const[]){ array }, notify_on_update,
	    n);
	free(array);
}

static void
notify_on_poll(int status, const struct store_result *r, void *arg)
{
	struct notify *n = arg;
	struct notify_channel *ch;
	struct notify_row *row;
	int n_rows = status == 0 ? store_result_rows(r) : 0, *unconfigured;
	size_t n_unconfigured = 0;

	n->polling = false;
	unconfigured = xcalloc(n_rows > 0 ? (size_t)n_rows : 1, sizeof(*unconfigured));
	for (int i = 0; i < n_rows; i++) {
		const char *name = store_result_value(r, i, 2);

		row = notify_row_parse(r, i);
		if (row == NULL) {
			log_warnx("skipping a malformed alert_outbox row (id %s)",
			    store_result_value(r, i, 0) ? store_result_value(r, i, 0) : "NULL");
			continue;
		}
		ch = notify_channel_find(n, name);
		if (ch == NULL || ch->conf == NULL) {
			unconfigured[n_unconfigured++] = i;
			notify_row_free(row);
			continue;
		}
		if (notify_channel_has(ch, row->id)) {
			notify_row_free(row);
			continue;
		}
		if (ch->tail != NULL)
			ch->tail->next = row;
		else
			ch->head = row;
		ch->tail = row;
	}
	notify_unconfigured(n, r, unconfigured, n_unconfigured);
	free(unconfigured);
	for (ch = n->channels; ch != NULL; ch = ch->next)
		notify_channel_next(ch);
	if (n->poll_again) {
		n->poll_again = false;
		notify_poll(n);
	}
}

static void
notify_poll(struct notify *n)
{
	char *busy;

	if (n->store == NULL)
		return;
	if (n->polling) {
		n->poll_again = true;
		return;
	}
	n->polling = true;
	busy = notify_names_array(n, true);
	store_query(n->store, sql_poll, 1, (const char *const[]){ busy }, notify_on_poll, n);
	free(busy);
}

static void
notify_on_timer(evutil_socket_t fd, short what, void *arg)
{
	notify_poll(arg);
}

static void
notify_on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct notify *n = arg;
	int64_t now = clock_mono_us();
	size_t i = 0;

	while (i < n->n_wakes) {
		if (n->wakes_us[i] <= now)
			n->wakes_us[i] = n->wakes_us[--n->n_wakes];
		else
			i++;
	}
	notify_wake_arm(n);
	notify_poll(n);
}

void
notify_kick(struct notify *n)
{
	if (n != NULL)
		notify_poll(n);
}

// Channels follow the configuration by name: a channel kept keeps its
// queue (formatted with its new settings), a removed one drops its queue
// (rows stay in the outbox) and finishes its delivery in flight.
static void
notify_sync_channels(struct notify *n, const struct agg_conf *conf)
{
	struct notify_channel *ch, *next;
	size_t i;

	for (ch = n->channels; ch != NULL; ch = ch->next)
		ch->conf = NULL;
	for (i = 0; i < conf->n_alerts; i++) {
		ch = notify_channel_find(n, conf->alerts[i].name);
		if (ch == NULL) {
			ch = xcalloc(1, sizeof(*ch));
			ch->owner = n;
			ch->name = xstrdup(conf->alerts[i].name);
			ch->next = n->channels;
			n->channels = ch;
		}
		ch->conf = &conf->alerts[i];
	}
	for (ch = n->channels; ch != NULL; ch = next) {
		next = ch->next;
		if (ch->conf != NULL)
			continue;
		notify_channel_drop_queue(ch);
		if (ch->busy == NULL)
			notify_channel_free(n, ch);
	}
	n->conf = conf;
}

struct notify *
notify_new(struct event_base *base, struct store *store, const struct agg_conf *conf)
{
	struct notify *n = xcalloc(1, sizeof(*n));
	struct timeval every = { NOTIFY_POLL_INTERVAL_S, 0 };
	char user_agent[96];

	n->base = base;
	n->store = store;
	snprintf(user_agent, sizeof(user_agent), "vantage-aggregator/%s", vantage_version);
	n->http = http_client_new(base, user_agent);
	n->poll_timer = event_new(base, -1, EV_PERSIST, notify_on_timer, n);
	n->wake_timer = evtimer_new(base, notify_on_wake, n);
	if (n->poll_timer == NULL || n->wake_timer == NULL)
		fatalx("could not create the notify outbox's events");
	event_add(n->poll_timer, &every);
	notify_sync_channels(n, conf);
	notify_poll(n);
	return n;
}

void
notify_reconfigure(struct notify *n, const struct agg_conf *conf)
{
	char *names;

	notify_sync_channels(n, conf);
	if (n->store == NULL)
		return;
	// Rows parked for a channel that was missing go out now if it is back.
	names = notify_names_array(n, false);
	store_query(n->store, sql_configured, 1, (const char *const[]){ names }, notify_on_update,
	    n);
	free(names);
	notify_poll(n);
}

void
notify_free(struct notify *n)
{
	if (n == NULL)
		return;
	while (n->channels != NULL)
		notify_channel_free(n, n->channels);
	// notify_deliver calls of tests, not tied to a channel.
	while (n->deliveries != NULL)
		notify_delivery_abandon(n, n->deliveries);
	http_client_free(n->http);
	event_free(n->poll_timer);
	event_free(n->wake_timer);
	free(n);
}

void
notify_get_stats(const struct notify *n, struct notify_stats *out)
{
	*out = n->stats;
}
