// SPDX-License-Identifier: Apache-2.0
//
// PostgreSQL store on libpq's asynchronous API; see store_pg.h.  The only
// module that talks to the database once the aggregator runs (migrate.c
// runs before the loop, blocking).  Every SQL statement is parameterised or
// a constant; values reach PostgreSQL as parameters or as COPY data, whose
// text is escaped here.  Must never block the loop: the connection is
// non-blocking and every wait is an event.
#include "store_pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "buf.h"
#include "clock.h"
#include "conninfo.h"
#include "log.h"
#include "migrate.h"
#include "xmalloc.h"

#define STORE_BACKOFF_MIN_MS 500
#define STORE_BACKOFF_MAX_MS 10000
// A server that stops answering (blackholed, frozen) is a dead one: an
// operation or a connection attempt that has not finished by then is
// abandoned and the connection dropped.  Long enough for the largest
// group commit (tens of thousands of rows take well under a second).
#define STORE_OP_TIMEOUT_US (15 * 1000000LL)
#define STORE_CONNECT_TIMEOUT_US (10 * 1000000LL)
#define STORE_COPY_CHUNK (256 * 1024)

enum op_kind { OP_HELLO, OP_TARGETS, OP_TXN, OP_EXEC, OP_QUERY };

// Steps of a transaction, in order; a step with nothing to do is skipped.
enum txn_step { TXN_BEGIN, TXN_COPY, TXN_GAPS, TXN_PROGRESS, TXN_COMMIT, TXN_ROLLBACK, TXN_DONE };

struct progress_ent {
	int agent_id;
	uint64_t epoch, old_seq, new_seq;
	store_commit_cb cb;
	void *arg;
};

struct gap_ent {
	int agent_id;
	uint64_t epoch, first_seq, last_seq;
};

struct op {
	enum op_kind kind;
	struct op *next;
	bool started;
	bool failed;
	bool fail_fast; // fails at once while the database is down
	int step;
	// OP_HELLO
	char *name, *region, *version;
	uint64_t epoch;
	int agent_id;
	uint64_t acked_seq;
	store_hello_cb hello_cb;
	// OP_TARGETS
	char **keys, **specs;
	size_t n_keys;
	int *ids;
	store_targets_cb targets_cb;
	void *arg;
	// OP_QUERY
	char *sql;
	char **values;
	int n_values;
	store_query_cb query_cb;
	PGresult *result;
	// OP_TXN
	struct buf copy;
	size_t rows;
	size_t copy_sent;
	struct progress_ent *progress;
	size_t n_progress, cap_progress;
	struct gap_ent *gaps;
	size_t n_gaps, cap_gaps;
	int64_t started_mono;
};

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_READY };

struct store {
	struct event_base *base;
	char *conninfo;
	PGconn *conn;
	enum conn_state state;
	struct event *ev; // socket readiness
	short ev_what;
	struct event *retry;    // reconnect backoff
	struct event *kick;     // starts the head operation from the loop
	struct event *watchdog; // abandons what takes too long
	int backoff_ms;
	int64_t connect_started_mono;
	int64_t down_since_mono; // 0 while up or before the first connection
	unsigned attempts;       // connection attempts since it went down
	struct op *head, *tail;
	struct op *open_txn; // txn accepting rows (not started)
	struct buf params;   // scratch for array literals
	// COPY timestamp cache: the text of one second
	int64_t ts_cache_sec;
	char ts_cache[32];
	struct store_stats stats;
	bool ever_connected;
	bool warned_down;
};

static void store_connect(struct store *s);
static void store_on_connected(struct store *s);
static void store_kick(struct store *s);
static void store_watch(struct store *s, short what);

// --- operations ---

static struct op *
store_op_new(enum op_kind kind)
{
	struct op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	buf_init(&op->copy);
	return op;
}

static void
store_op_free(struct op *op)
{
	free(op->name);
	free(op->region);
	free(op->version);
	for (size_t i = 0; i < op->n_keys; i++) {
		free(op->keys[i]);
		free(op->specs[i]);
	}
	free(op->keys);
	free(op->specs);
	free(op->ids);
	buf_free(&op->copy);
	free(op->progress);
	free(op->gaps);
	free(op->sql);
	for (int i = 0; i < op->n_values; i++)
		free(op->values[i]);
	free(op->values);
	if (op->result != NULL)
		PQclear(op->result);
	free(op);
}

// The operation starts on the next turn of the loop, never inside the
// caller's call: a transaction started by its first row would take that row
// alone, COMMIT it without the progress step that covers it, and put the
// rest of the batch in the next transaction, breaking exactly-once.  It
// also keeps callbacks of a failed send from running inside store_add_*.
static void
store_enqueue(struct store *s, struct op *op)
{
	if (s->tail != NULL)
		s->tail->next = op;
	else
		s->head = op;
	s->tail = op;
	event_active(s->kick, EV_TIMEOUT, 0);
}

static struct op *
store_open_txn(struct store *s)
{
	if (s->open_txn == NULL || s->open_txn->started) {
		s->open_txn = store_op_new(OP_TXN);
		store_enqueue(s, s->open_txn);
	}
	return s->open_txn;
}

static void
store_unlink(struct store *s, struct op *op)
{
	struct op **pp = &s->head, *prev = NULL;

	while (*pp != op) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	*pp = op->next;
	if (s->tail == op)
		s->tail = prev;
}

// Runs the callbacks of a finished operation, already out of the queue.
static void
store_finish(struct store *s, struct op *op)
{
	int status = op->failed ? -1 : 0;

	if (s->open_txn == op)
		s->open_txn = NULL;
	switch (op->kind) {
	case OP_HELLO:
		op->hello_cb(status, op->agent_id, op->acked_seq, op->arg);
		break;
	case OP_TARGETS:
		op->targets_cb(status, op->ids, op->arg);
		break;
	case OP_EXEC:
		break;
	case OP_QUERY:
		op->query_cb(status, status == 0 ? (const struct store_result *)op->result : NULL,
		    op->arg);
		break;
	case OP_TXN:
		if (status == 0) {
			s->stats.rows_committed += op->rows;
			s->stats.txns_committed++;
			s->stats.last_commit_us = clock_mono_us() - op->started_mono;
		} else {
			s->stats.txns_failed++;
		}
		for (size_t i = 0; i < op->n_progress; i++)
			op->progress[i].cb(status, op->progress[i].new_seq, op->progress[i].arg);
		break;
	}
	store_op_free(op);
}

static void
store_complete(struct store *s, struct op *op)
{
	store_unlink(s, op);
	store_finish(s, op);
}

// --- array literals for unnest() parameters ---

static void
store_array_begin(struct buf *b)
{
	buf_reset(b);
	buf_putc(b, '{');
}

static void
store_array_int(struct buf *b, int64_t v)
{
	if (b->len > 1)
		buf_putc(b, ',');
	buf_printf(b, "%" PRId64, v);
}

static void
store_array_text(struct buf *b, const char *v)
{
	if (b->len > 1)
		buf_putc(b, ',');
	buf_putc(b, '"');
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *v);
	}
	buf_putc(b, '"');
}

// Returns an owned NUL-terminated copy of the array literal in b.
static char *
store_array_end(struct buf *b)
{
	buf_putc(b, '}');
	return xstrdup(buf_cstr(b));
}

// --- sending steps ---

static const char sql_hello[] =
    "WITH a AS (INSERT INTO agents (name, region, version) VALUES ($1, $2, $3) "
    "ON CONFLICT (name) DO UPDATE SET region = EXCLUDED.region, "
    "version = EXCLUDED.version, last_seen = now() RETURNING id), "
    "p AS (INSERT INTO agent_progress (agent_id, epoch) SELECT id, $4 FROM a "
    "ON CONFLICT DO NOTHING RETURNING acked_seq) "
    "SELECT a.id, COALESCE((SELECT acked_seq FROM p), (SELECT ap.acked_seq FROM "
    "agent_progress ap WHERE ap.agent_id = a.id AND ap.epoch = $4)) FROM a";

static const char sql_targets[] =
    "WITH up AS (INSERT INTO targets (key, spec) "
    "SELECT k, s::jsonb FROM unnest($1::text[], $2::text[]) AS t(k, s) "
    "ON CONFLICT (key) DO UPDATE SET spec = EXCLUDED.spec, retired_at = NULL "
    "RETURNING id, key), "
    "gone AS (UPDATE targets SET retired_at = now() WHERE retired_at IS NULL "
    "AND key <> ALL ($1::text[]) RETURNING id) "
    "SELECT key, id FROM up";

static const char sql_copy[] =
    "COPY results (started_at, agent_id, target_id, epoch, seq, config_version, "
    "sched_delay_us, outcome, reason, trigger, agent_state, http_status, dns_us, "
    "connect_us, tls_us, ttfb_us, total_us, bytes, tls_expiry, peer, error) FROM STDIN";

static const char sql_gaps[] =
    "INSERT INTO gaps (agent_id, epoch, first_seq, last_seq) "
    "SELECT * FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[]) "
    "ON CONFLICT DO NOTHING";

static const char sql_progress[] =
    "UPDATE agent_progress p SET acked_seq = v.n, updated_at = now() "
    "FROM unnest($1::int[], $2::bigint[], $3::bigint[], $4::bigint[]) AS v(a, e, o, n) "
    "WHERE p.agent_id = v.a AND p.epoch = v.e AND p.acked_seq = v.o";

static const char sql_maintain[] =
    "SELECT vantage_ensure_partitions(current_date - 1, current_date + 3)";

static int
store_send_params(struct store *s, const char *sql, int n, char **values)
{
	return PQsendQueryParams(s->conn, sql, n, NULL, (const char *const *)values, NULL, NULL, 0);
}

// Four parallel integer arrays for the gap and progress statements.
static int
store_send_quad(struct store *s, const char *sql, size_t n, const int *a, const uint64_t *b,
    const uint64_t *c, const uint64_t *d, size_t stride)
{
	char *v[4];
	int rc;

	store_array_begin(&s->params);
	for (size_t i = 0; i < n; i++)
		store_array_int(&s->params, *(const int *)((const char *)a + i * stride));
	v[0] = store_array_end(&s->params);
	const uint64_t *cols[3] = { b, c, d };
	for (int k = 0; k < 3; k++) {
		store_array_begin(&s->params);
		for (size_t i = 0; i < n; i++)
			store_array_int(&s->params,
			    (int64_t) * (const uint64_t *)((const char *)cols[k] + i * stride));
		v[k + 1] = store_array_end(&s->params);
	}
	rc = store_send_params(s, sql, 4, v);
	for (int k = 0; k < 4; k++)
		free(v[k]);
	return rc;
}

// Moves a transaction to its next step that has work, and sends it.
static int
store_txn_send(struct store *s, struct op *op)
{
	for (;;) {
		switch (op->step) {
		case TXN_BEGIN:
			return PQsendQuery(s->conn, "BEGIN");
		case TXN_COPY:
			if (op->rows == 0)
				break;
			op->copy_sent = 0;
			return PQsendQuery(s->conn, sql_copy);
		case TXN_GAPS:
			if (op->n_gaps == 0)
				break;
			return store_send_quad(s, sql_gaps, op->n_gaps, &op->gaps[0].agent_id,
			    &op->gaps[0].epoch, &op->gaps[0].first_seq, &op->gaps[0].last_seq,
			    sizeof(op->gaps[0]));
		case TXN_PROGRESS:
			if (op->n_progress == 0)
				break;
			return store_send_quad(s, sql_progress, op->n_progress,
			    &op->progress[0].agent_id, &op->progress[0].epoch,
			    &op->progress[0].old_seq, &op->progress[0].new_seq,
			    sizeof(op->progress[0]));
		case TXN_COMMIT:
			return PQsendQuery(s->conn, "COMMIT");
		case TXN_ROLLBACK:
			return PQsendQuery(s->conn, "ROLLBACK");
		default:
			return 0;
		}
		op->step++;
	}
}

static int
store_op_send(struct store *s, struct op *op)
{
	switch (op->kind) {
	case OP_HELLO: {
		char epoch[24];
		char *v[4] = { op->name, op->region, op->version, epoch };

		snprintf(epoch, sizeof(epoch), "%" PRId64, (int64_t)op->epoch);
		return store_send_params(s, sql_hello, 4, v);
	}
	case OP_TARGETS: {
		char *v[2];
		int rc;

		store_array_begin(&s->params);
		for (size_t i = 0; i < op->n_keys; i++)
			store_array_text(&s->params, op->keys[i]);
		v[0] = store_array_end(&s->params);
		store_array_begin(&s->params);
		for (size_t i = 0; i < op->n_keys; i++)
			store_array_text(&s->params, op->specs[i]);
		v[1] = store_array_end(&s->params);
		rc = store_send_params(s, sql_targets, 2, v);
		free(v[0]);
		free(v[1]);
		return rc;
	}
	case OP_TXN:
		return store_txn_send(s, op);
	case OP_EXEC:
		return PQsendQuery(s->conn, sql_maintain);
	case OP_QUERY:
		return PQsendQueryParams(s->conn, op->sql, op->n_values, NULL,
		    (const char *const *)op->values, NULL, NULL, 0);
	}
	return 0;
}

// --- connection ---

// Operations someone is waiting on (API requests) are not kept for a
// database that is away: they fail now, from the loop, and their callers
// answer 503.  Collected first, because a callback may queue more.
static void
store_fail_fast(struct store *s)
{
	struct op *failed = NULL, **last = &failed, *op, *next;

	for (op = s->head; op != NULL; op = next) {
		next = op->next;
		if (!op->fail_fast)
			continue;
		store_unlink(s, op);
		op->next = NULL;
		*last = op;
		last = &op->next;
	}
	for (op = failed; op != NULL; op = next) {
		next = op->next;
		op->failed = true;
		store_finish(s, op);
	}
}

// The first line of libpq's message (they end with a newline, some have
// a hint on the next).
static int
store_msg_len(const char *msg)
{
	return (int)strcspn(msg, "\n");
}

// Ends the connection (lost, failed to connect, or abandoned) and arms the
// next attempt.  One warning per outage, not one per retry: the first
// failure says what happened, the reconnection says how long it lasted.
static void
store_lost(struct store *s, const char *why)
{
	struct op *op = s->head;

	if (s->state == CONN_READY) {
		log_warnx("lost the database connection: %.*s; results are not acknowledged "
			  "until it is back (agents keep them)",
		    store_msg_len(why), why);
		s->stats.reconnects++;
		s->down_since_mono = clock_mono_us();
		s->attempts = 0;
		s->warned_down = true;
	} else if (!s->warned_down) {
		log_warnx("cannot connect to the database: %.*s; retrying", store_msg_len(why),
		    why);
		s->warned_down = true;
		if (s->down_since_mono == 0)
			s->down_since_mono = clock_mono_us();
	} else {
		log_debug("database connection attempt %u failed: %.*s", s->attempts,
		    store_msg_len(why), why);
	}
	if (s->conn != NULL) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
	if (s->ev != NULL) {
		event_free(s->ev);
		s->ev = NULL;
	}
	s->state = CONN_DOWN;
	// A transaction cut off may or may not have committed: report it
	// failed so the caller re-reads progress.  Other operations are
	// idempotent and simply run again, from scratch: an error the dying
	// server sent them (57P01 admin shutdown) is not their outcome.
	if (op != NULL && op->started) {
		if (op->kind == OP_TXN) {
			op->failed = true;
			store_complete(s, op);
		} else {
			op->started = false;
			op->failed = false;
			op->step = 0;
			if (op->result != NULL) {
				PQclear(op->result);
				op->result = NULL;
			}
		}
	}
	store_fail_fast(s);
	// Rows not yet sent stay queued; the open transaction is kept.
	{
		struct timeval tv = { s->backoff_ms / 1000, (s->backoff_ms % 1000) * 1000 };

		evtimer_add(s->retry, &tv);
	}
	s->backoff_ms = s->backoff_ms * 2 > STORE_BACKOFF_MAX_MS ? STORE_BACKOFF_MAX_MS :
								   s->backoff_ms * 2;
}

// PQcancel would block the loop, and a server that does not answer would
// not answer it either: what overstays is abandoned with its connection.
static void
store_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;
	int64_t now = clock_mono_us();

	if (s->state == CONN_CONNECTING && now - s->connect_started_mono > STORE_CONNECT_TIMEOUT_US)
		store_lost(s, "connection attempt timed out");
	else if (s->state == CONN_READY && s->head != NULL && s->head->started &&
	    now - s->head->started_mono > STORE_OP_TIMEOUT_US)
		store_lost(s, "no answer from the server in 15 s");
}

static void
store_on_retry(evutil_socket_t fd, short what, void *arg)
{
	store_connect(arg);
}

static void
store_on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;

	if (s->state != CONN_READY)
		store_fail_fast(s);
	store_kick(s);
}

// Sends COPY data as far as the socket takes it; 1 when all is sent.
static int
store_copy_push(struct store *s, struct op *op)
{
	while (op->copy_sent < op->copy.len) {
		size_t n = op->copy.len - op->copy_sent;
		int rc;

		if (n > STORE_COPY_CHUNK)
			n = STORE_COPY_CHUNK;
		rc = PQputCopyData(s->conn, (const char *)op->copy.data + op->copy_sent, (int)n);
		if (rc < 0)
			return -1;
		if (rc == 0)
			return 0;
		op->copy_sent += n;
	}
	if (PQputCopyEnd(s->conn, NULL) <= 0)
		return PQstatus(s->conn) == CONNECTION_OK ? 0 : -1;
	op->copy_sent = SIZE_MAX; // marker: data and end sent
	return 1;
}

// Handles one PGresult of the running operation.  Returns true when it
// kept the result (the caller must not clear it).
static bool
store_on_result(struct store *s, struct op *op, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
		const char *msg = PQresultErrorMessage(res);

		log_warnx("database error in %s: %.*s",
		    op->kind == OP_TXN       ? "result transaction" :
			op->kind == OP_HELLO ? "agent registration" :
			op->kind == OP_EXEC  ? "maintenance" :
			op->kind == OP_QUERY ? "query" :
					       "target sync",
		    (int)strcspn(msg, "\n"), msg);
		op->failed = true;
		return false;
	}
	switch (op->kind) {
	case OP_HELLO:
		if (st == PGRES_TUPLES_OK && PQntuples(res) == 1) {
			op->agent_id = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
			op->acked_seq = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		} else {
			op->failed = true;
		}
		break;
	case OP_TARGETS:
		if (st != PGRES_TUPLES_OK) {
			op->failed = true;
			break;
		}
		for (int r = 0; r < PQntuples(res); r++)
			for (size_t i = 0; i < op->n_keys; i++)
				if (strcmp(op->keys[i], PQgetvalue(res, r, 0)) == 0)
					op->ids[i] = (int)strtol(PQgetvalue(res, r, 1), NULL, 10);
		break;
	case OP_EXEC:
		break;
	case OP_QUERY:
		// A statement has one result; keep it for the callback.
		if (op->result == NULL && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
			op->result = res;
			return true;
		}
		break;
	case OP_TXN:
		if (st == PGRES_COPY_IN) {
			int rc = store_copy_push(s, op);

			if (rc < 0)
				op->failed = true;
			else if (rc == 0)
				store_watch(s, EV_READ | EV_WRITE);
		} else if (op->step == TXN_PROGRESS &&
		    strtoull(PQcmdTuples(res), NULL, 10) != op->n_progress) {
			log_warnx("agent progress moved under a transaction (%s of %zu rows "
				  "updated): rolling back",
			    PQcmdTuples(res), op->n_progress);
			op->failed = true;
		}
		break;
	}
	return false;
}

// The running command returned all its results: next step or complete.
static void
store_step_done(struct store *s, struct op *op)
{
	if (op->kind != OP_TXN) {
		store_complete(s, op);
		return;
	}
	if (op->failed && op->step < TXN_ROLLBACK)
		op->step = TXN_ROLLBACK;
	else if (op->step == TXN_COMMIT || op->step == TXN_ROLLBACK)
		op->step = TXN_DONE;
	else
		op->step++;
	if (op->step == TXN_DONE) {
		store_complete(s, op);
		return;
	}
	if (!store_txn_send(s, op)) {
		store_lost(s, PQerrorMessage(s->conn));
		return;
	}
	store_watch(s, EV_READ | EV_WRITE);
}

static void
store_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;
	struct op *op;

	if (s->state == CONN_CONNECTING) {
		switch (PQconnectPoll(s->conn)) {
		case PGRES_POLLING_READING:
			store_watch(s, EV_READ);
			return;
		case PGRES_POLLING_WRITING:
			store_watch(s, EV_WRITE);
			return;
		case PGRES_POLLING_OK:
			PQsetnonblocking(s->conn, 1);
			s->state = CONN_READY;
			s->backoff_ms = STORE_BACKOFF_MIN_MS;
			store_on_connected(s);
			store_watch(s, EV_READ);
			store_kick(s);
			return;
		default:
			store_lost(s, PQerrorMessage(s->conn));
			return;
		}
	}
	if (s->state != CONN_READY)
		return;
	op = s->head;
	if (what & EV_WRITE) {
		if (op != NULL && op->kind == OP_TXN && op->step == TXN_COPY &&
		    op->copy_sent != SIZE_MAX && op->copy_sent > 0) {
			if (store_copy_push(s, op) < 0) {
				store_lost(s, PQerrorMessage(s->conn));
				return;
			}
		}
		int rc = PQflush(s->conn);
		if (rc < 0) {
			store_lost(s, PQerrorMessage(s->conn));
			return;
		}
		store_watch(s, rc == 0 ? EV_READ : EV_READ | EV_WRITE);
	}
	if (!(what & EV_READ))
		return;
	if (!PQconsumeInput(s->conn)) {
		store_lost(s, PQerrorMessage(s->conn));
		return;
	}
	while (s->conn != NULL && (op = s->head) != NULL && op->started && !PQisBusy(s->conn)) {
		PGresult *res = PQgetResult(s->conn);

		if (res == NULL) {
			store_step_done(s, op);
			continue;
		}
		if (!store_on_result(s, op, res))
			PQclear(res);
		if (PQstatus(s->conn) != CONNECTION_OK) {
			store_lost(s, PQerrorMessage(s->conn));
			return;
		}
		// COPY data is being pushed: results come after the end.
		if (op->kind == OP_TXN && op->step == TXN_COPY && op->copy_sent != SIZE_MAX &&
		    !op->failed)
			break;
	}
	if (s->conn != NULL && PQflush(s->conn) == 1)
		store_watch(s, EV_READ | EV_WRITE);
	store_kick(s);
}

static void
store_watch(struct store *s, short what)
{
	// libpq may switch sockets while connecting (multi-host, SSL or GSS
	// fallback): the event must follow the socket, not only the flags.
	if (s->ev != NULL && s->ev_what == what && event_get_fd(s->ev) == PQsocket(s->conn))
		return;
	if (s->ev != NULL)
		event_free(s->ev);
	s->ev_what = what;
	s->ev = event_new(s->base, PQsocket(s->conn), what | EV_PERSIST, store_on_io, s);
	event_add(s->ev, NULL);
}

// Starts the head operation when the connection is idle.
static void
store_kick(struct store *s)
{
	struct op *op = s->head;

	if (s->state != CONN_READY || op == NULL || op->started)
		return;
	op->started = true;
	op->started_mono = clock_mono_us();
	op->step = 0;
	if (!store_op_send(s, op)) {
		store_lost(s, PQerrorMessage(s->conn));
		return;
	}
	store_watch(s, EV_READ | EV_WRITE);
}

// libpq connection parameters: TCP keepalives and a user timeout, so that
// a server that vanishes without a reset (blackholed, powered off) is
// noticed in about 10 s rather than after the kernel's two hours.  They
// come first and the user's conninfo (expanded from "dbname") after, so
// anything the user set wins; libpq ignores them on unix sockets, and
// sslmode and the rest are never touched.
static const char *const store_keywords[] = { "keepalives", "keepalives_idle",
	"keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname", NULL };
#define STORE_N_DEFAULTS 5

static void
store_params(const char *conninfo, const char *values[STORE_N_DEFAULTS + 2])
{
	static const char *const defaults[STORE_N_DEFAULTS] = { "1", "5", "2", "3", "10000" };

	for (int i = 0; i < STORE_N_DEFAULTS; i++)
		values[i] = defaults[i];
	values[STORE_N_DEFAULTS] = conninfo;
	values[STORE_N_DEFAULTS + 1] = NULL;
}

static void
store_connect(struct store *s)
{
	const char *values[STORE_N_DEFAULTS + 2];

	store_params(s->conninfo, values);
	s->attempts++;
	s->connect_started_mono = clock_mono_us();
	s->conn = PQconnectStartParams(store_keywords, values, 1);
	if (s->conn == NULL)
		fatalx("out of memory creating a database connection");
	if (PQstatus(s->conn) == CONNECTION_BAD) {
		store_lost(s, PQerrorMessage(s->conn));
		return;
	}
	s->state = CONN_CONNECTING;
	store_watch(s, EV_WRITE);
}

static void
store_on_connected(struct store *s)
{
	if (!s->ever_connected) {
		char *shown = conninfo_redact(s->conninfo);

		log_info("connected to the database \"%s\"", shown);
		free(shown);
	} else if (s->down_since_mono != 0) {
		log_info("reconnected to the database after %.1f s (%u attempts)",
		    (double)(clock_mono_us() - s->down_since_mono) / 1e6, s->attempts);
	}
	s->ever_connected = true;
	s->warned_down = false;
	s->down_since_mono = 0;
	s->attempts = 0;
}

struct store *
store_new(struct event_base *base, const char *conninfo)
{
	struct store *s = xcalloc(1, sizeof(*s));
	struct timeval second = { 1, 0 };

	s->base = base;
	s->conninfo = xstrdup(conninfo);
	s->backoff_ms = STORE_BACKOFF_MIN_MS;
	s->retry = evtimer_new(base, store_on_retry, s);
	s->kick = event_new(base, -1, 0, store_on_kick, s);
	s->watchdog = event_new(base, -1, EV_PERSIST, store_on_watchdog, s);
	event_add(s->watchdog, &second);
	s->ts_cache_sec = INT64_MIN;
	buf_init(&s->params);
	store_connect(s);
	return s;
}

void
store_free(struct store *s)
{
	struct op *op, *next;

	if (s == NULL)
		return;
	for (op = s->head; op != NULL; op = next) {
		next = op->next;
		store_op_free(op);
	}
	if (s->ev != NULL)
		event_free(s->ev);
	event_free(s->retry);
	event_free(s->kick);
	event_free(s->watchdog);
	if (s->conn != NULL)
		PQfinish(s->conn);
	buf_free(&s->params);
	free(s->conninfo);
	free(s);
}

bool
store_connected(const struct store *s)
{
	return s->state == CONN_READY;
}

// --- public operations ---

void
store_hello(struct store *s, const char *name, const char *region, const char *version,
    uint64_t epoch, store_hello_cb cb, void *arg)
{
	struct op *op = store_op_new(OP_HELLO);

	op->name = xstrdup(name);
	op->region = xstrdup(region);
	op->version = xstrdup(version);
	op->epoch = epoch;
	op->hello_cb = cb;
	op->arg = arg;
	store_enqueue(s, op);
}

void
store_sync_targets(struct store *s, const char *const *keys, const char *const *specs, size_t n,
    store_targets_cb cb, void *arg)
{
	struct op *op = store_op_new(OP_TARGETS);

	op->n_keys = n;
	op->keys = xcalloc(n ? n : 1, sizeof(char *));
	op->specs = xcalloc(n ? n : 1, sizeof(char *));
	op->ids = xcalloc(n ? n : 1, sizeof(int));
	for (size_t i = 0; i < n; i++) {
		op->keys[i] = xstrdup(keys[i]);
		op->specs[i] = xstrdup(specs[i]);
	}
	op->targets_cb = cb;
	op->arg = arg;
	store_enqueue(s, op);
}

// COPY text: backslash, tab, newline and carriage return are escaped;
// an empty string is stored as NULL.
static void
store_copy_text(struct buf *b, const char *v)
{
	if (v == NULL || *v == '\0') {
		buf_append(b, "\\N", 2);
		return;
	}
	for (; *v; v++) {
		switch (*v) {
		case '\\':
			buf_append(b, "\\\\", 2);
			break;
		case '\t':
			buf_append(b, "\\t", 2);
			break;
		case '\n':
			buf_append(b, "\\n", 2);
			break;
		case '\r':
			buf_append(b, "\\r", 2);
			break;
		default:
			buf_putc(b, *v);
		}
	}
}

static void
store_copy_time(struct store *s, struct buf *b, int64_t unix_us)
{
	int64_t sec = unix_us / 1000000, frac = unix_us % 1000000;

	if (frac < 0) {
		frac += 1000000;
		sec--;
	}
	if (sec != s->ts_cache_sec) {
		time_t t = (time_t)sec;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(s->ts_cache, sizeof(s->ts_cache), "%Y-%m-%d %H:%M:%S", &tm);
		s->ts_cache_sec = sec;
	}
	buf_printf(b, "%s.%06" PRId64 "+00", s->ts_cache, frac);
}

void
store_add_result(struct store *s, int agent_id, uint64_t epoch, int target_id,
    const Vantage__Result *r)
{
	struct op *op = store_open_txn(s);
	struct buf *b = &op->copy;

	store_copy_time(s, b, r->started_at);
	buf_printf(b,
	    "\t%d\t%d\t%" PRId64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRId64
	    "\t%d\t%d\t%d\t%d\t%u\t%u\t%u\t%u\t%u\t%u\t%" PRIu64 "\t",
	    agent_id, target_id, (int64_t)epoch, r->seq, r->config_version,
	    r->started_at - r->scheduled_at, (int)r->outcome, (int)r->reason, (int)r->trigger,
	    (int)r->agent_state, r->http_status, r->dns_us, r->connect_us, r->tls_us, r->ttfb_us,
	    r->total_us, r->bytes);
	if (r->tls_expiry > 0)
		store_copy_time(s, b, r->tls_expiry * 1000000);
	else
		buf_append(b, "\\N", 2);
	buf_putc(b, '\t');
	store_copy_text(b, r->peer);
	buf_putc(b, '\t');
	store_copy_text(b, r->error);
	buf_putc(b, '\n');
	op->rows++;
}

void
store_add_gap(struct store *s, int agent_id, uint64_t epoch, uint64_t first_seq, uint64_t last_seq)
{
	struct op *op = store_open_txn(s);

	if (op->n_gaps == op->cap_gaps) {
		op->cap_gaps = op->cap_gaps ? op->cap_gaps * 2 : 8;
		op->gaps = xreallocarray(op->gaps, op->cap_gaps, sizeof(*op->gaps));
	}
	op->gaps[op->n_gaps++] = (struct gap_ent){ agent_id, epoch, first_seq, last_seq };
}

void
store_add_progress(struct store *s, int agent_id, uint64_t epoch, uint64_t old_seq,
    uint64_t new_seq, store_commit_cb cb, void *arg)
{
	struct op *op = store_open_txn(s);

	// One row per stream in the UPDATE: a later batch of the same stream
	// in this transaction extends the range of the entry already there.
	for (size_t i = 0; i < op->n_progress; i++) {
		struct progress_ent *p = &op->progress[i];

		if (p->agent_id == agent_id && p->epoch == epoch && p->new_seq == old_seq &&
		    p->cb == cb && p->arg == arg) {
			p->new_seq = new_seq;
			return;
		}
	}
	if (op->n_progress == op->cap_progress) {
		op->cap_progress = op->cap_progress ? op->cap_progress * 2 : 16;
		op->progress = xreallocarray(op->progress, op->cap_progress, sizeof(*op->progress));
	}
	op->progress[op->n_progress++] = (struct progress_ent){ agent_id, epoch, old_seq, new_seq,
		cb, arg };
}

void
store_get_stats(const struct store *s, struct store_stats *out)
{
	*out = s->stats;
	out->rows_pending = s->open_txn != NULL ? s->open_txn->rows : 0;
}

void
store_maintain(struct store *s)
{
	store_enqueue(s, store_op_new(OP_EXEC));
}

bool
store_idle(const struct store *s)
{
	return s->head == NULL;
}

int
store_prepare(const char *conninfo, int wait_s)
{
	int64_t deadline = clock_mono_us() + (int64_t)wait_s * 1000000;
	PGconn *conn;
	PGresult *res;
	int version;

	for (;;) {
		const char *values[STORE_N_DEFAULTS + 2];

		store_params(conninfo, values);
		conn = PQconnectdbParams(store_keywords, values, 1);
		if (PQstatus(conn) == CONNECTION_OK)
			break;
		if (clock_mono_us() >= deadline) {
			const char *why = PQerrorMessage(conn);

			log_warnx("cannot connect to the database: %.*s", store_msg_len(why), why);
			PQfinish(conn);
			return -1;
		}
		PQfinish(conn);
		struct timespec pause = { 0, 200 * 1000000 };
		nanosleep(&pause, NULL);
	}
	version = migrate_apply(conn);
	if (version < 0) {
		PQfinish(conn);
		return -1;
	}
	res = PQexec(conn, sql_maintain);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_warnx("could not create results partitions: %s", PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(conn);
		return -1;
	}
	PQclear(res);
	PQfinish(conn);
	return 0;
}

void
store_query(struct store *s, const char *sql, int n, const char *const *values, store_query_cb cb,
    void *arg)
{
	struct op *op = store_op_new(OP_QUERY);

	op->sql = xstrdup(sql);
	op->n_values = n;
	op->values = xcalloc(n > 0 ? (size_t)n : 1, sizeof(char *));
	for (int i = 0; i < n; i++)
		op->values[i] = values[i] != NULL ? xstrdup(values[i]) : NULL;
	op->query_cb = cb;
	op->arg = arg;
	store_enqueue(s, op);
}

void
store_query_now(struct store *s, const char *sql, int n, const char *const *values,
    store_query_cb cb, void *arg)
{
	store_query(s, sql, n, values, cb, arg);
	s->tail->fail_fast = true;
}

bool
store_down_since(const struct store *s, int64_t *since_mono)
{
	if (s->state == CONN_READY)
		return false;
	if (since_mono != NULL)
		*since_mono = s->down_since_mono;
	return true;
}

int
store_result_rows(const struct store_result *r)
{
	return r != NULL ? PQntuples((const PGresult *)r) : 0;
}

const char *
store_result_value(const struct store_result *r, int row, int col)
{
	const PGresult *res = (const PGresult *)r;

	if (r == NULL || row >= PQntuples(res) || col >= PQnfields(res) ||
	    PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

long long
store_result_affected(const struct store_result *r)
{
	return r != NULL ? strtoll(PQcmdTuples((PGresult *)r), NULL, 10) : 0;
}
