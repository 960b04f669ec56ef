// SPDX-License-Identifier: Apache-2.0
//
// Shared by the unit tests that start a throwaway PostgreSQL cluster with
// pgembed (test_pgembed.c, test_store.c, test_incident.c, test_ingest.c):
// whether one can run here (else exit 77 with the reason), making it in a
// fresh directory under /tmp and removing that directory, on a signal that
// skips atexit (a runner's timeout, ^C) asking the postmaster for a fast
// shutdown so no server outlives the test (async-signal-safe only), driving
// an event loop until a condition holds with a bound, and a second,
// blocking connection (integer or text parameters) that checks what the
// code under test claims.  Include after cmocka.h.
#ifndef VANTAGE_PGTEST_H
#define VANTAGE_PGTEST_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "pgembed.h"

// Sends SIGINT to the postmaster of STATE_DIR/pg, then dies of sig.
static void
pgtest_die_on_signal(const char *state_dir, int sig)
{
	static const char suffix[] = "/pg/postmaster.pid";
	char path[4096], text[32];
	size_t dir_len = strlen(state_dir);
	ssize_t n = -1;
	long pid = 0;
	int fd;

	if (dir_len + sizeof(suffix) <= sizeof(path)) {
		memcpy(path, state_dir, dir_len);
		memcpy(path + dir_len, suffix, sizeof(suffix));
		fd = open(path, O_RDONLY);
		if (fd != -1) {
			n = read(fd, text, sizeof(text));
			close(fd);
		}
	}
	for (ssize_t i = 0; i < n && text[i] >= '0' && text[i] <= '9'; i++)
		pid = pid * 10 + (text[i] - '0');
	if (pid > 0)
		kill((pid_t)pid, SIGINT);
	signal(sig, SIG_DFL);
	raise(sig);
}

// Why no cluster can be made here (printed as "SKIP: ..." by the caller,
// which exits 77), or NULL when one can.
static inline const char *
pgtest_cannot_run(void)
{
	glob_t gl;

	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &gl) != 0)
		return "no PostgreSQL server installed (/usr/lib/postgresql/*/bin/initdb not found)";
	globfree(&gl);
	if (geteuid() == 0 && getpwnam("vantage") == NULL)
		return "running as root and user \"vantage\" does not exist (run \"make deps\" as "
		       "root to create it)";
	return NULL;
}

static inline int
pgtest_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) == -1)
		fprintf(stderr, "could not remove \"%s\": %s\n", path, strerror(errno));
	return 0;
}

// Removes the directory root made by pgtest_mkdir and everything in it.
static inline void
pgtest_remove_tree(const char *root)
{
	nftw(root, pgtest_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

// Makes the directory root (a mkdtemp template, rewritten) for a cluster
// in root/state, written to state (state_len bytes).  Returns 0, or -1
// after saying why.
static inline int
pgtest_mkdir(char *root, char *state, size_t state_len)
{
	if (mkdtemp(root) == NULL) {
		fprintf(stderr, "could not create \"%s\": %s\n", root, strerror(errno));
		return -1;
	}
	// Only the cluster owner "vantage" needs to pass through, not list.
	if (geteuid() == 0 && chmod(root, 0711) == -1) {
		fprintf(stderr, "could not change the mode of \"%s\": %s\n", root, strerror(errno));
		return -1;
	}
	snprintf(state, state_len, "%s/state", root);
	return 0;
}

static bool pgtest_timed_out;

static inline void
pgtest_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pgtest_timed_out = true;
	event_base_loopbreak(arg);
}

// Runs base until cond(arg) holds or timeout_ms pass; returns whether it
// holds.
static inline bool
pgtest_run_until(struct event_base *base, bool (*cond)(const void *), const void *arg,
    int timeout_ms)
{
	struct event *timer = evtimer_new(base, pgtest_on_timeout, base);
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

	pgtest_timed_out = false;
	evtimer_add(timer, &tv);
	while (!cond(arg) && !pgtest_timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(timer);
	return cond(arg);
}

// Runs sql on db with text parameters (NULL for SQL NULL), failing the
// test unless its status is want; the caller clears the result.
static inline PGresult *
pgtest_query_text(PGconn *db, const char *sql, const char *const *params, size_t n_params,
    ExecStatusType want)
{
	PGresult *res = PQexecParams(db, sql, (int)n_params, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != want) {
		fprintf(stderr, "query \"%s\" failed: %s", sql, PQerrorMessage(db));
		PQclear(res);
		fail();
	}
	return res;
}

// Runs sql on db with integer parameters, failing the test unless its
// status is want; the caller clears the result.
static inline PGresult *
pgtest_query(PGconn *db, const char *sql, const int64_t *args, size_t n_args, ExecStatusType want)
{
	char text[8][24];
	const char *params[8];

	assert_true(n_args <= 8);
	for (size_t i = 0; i < n_args; i++) {
		snprintf(text[i], sizeof(text[i]), "%" PRId64, args[i]);
		params[i] = text[i];
	}
	return pgtest_query_text(db, sql, params, n_args, want);
}

// The one value of res, the result of sql, which must have one row and one
// column (NULL reads as -1); clears res.
static inline int64_t
pgtest_one_value(const char *sql, PGresult *res)
{
	int64_t value;

	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		fprintf(stderr, "query \"%s\" returned %d rows\n", sql, PQntuples(res));
		PQclear(res);
		fail();
	}
	value = PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return value;
}

// The one value of a one-row, one-column query (NULL reads as -1).
static inline int64_t
pgtest_value(PGconn *db, const char *sql, const int64_t *args, size_t n_args)
{
	return pgtest_one_value(sql, pgtest_query(db, sql, args, n_args, PGRES_TUPLES_OK));
}

// The same with text parameters.
static inline int64_t
pgtest_value_text(PGconn *db, const char *sql, const char *const *params, size_t n_params)
{
	return pgtest_one_value(sql, pgtest_query_text(db, sql, params, n_params, PGRES_TUPLES_OK));
}

#define PGTEST_ARGS(...) \
	(const int64_t[]){ __VA_ARGS__ }, sizeof((const int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)

#endif
