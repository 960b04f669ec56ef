// SPDX-License-Identifier: Apache-2.0
//
// Tests of the embedded PostgreSQL cluster (pgembed.c) and the migrations
// (migrate.c) against a real throwaway cluster under /tmp: first start with
// initdb, idempotent migrations, partitions, a refused newer schema, adopting
// a server left behind by an aggregator killed with SIGKILL, and a socket
// path that is too long.  Skips (exit 77) when no PostgreSQL server is
// installed.  Every cluster it starts is stopped and its directory removed,
// also when an assertion fails, so it never leaves a postgres behind.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "migrate.h"
#include "pgembed.h"
#include "pgtest.h"

static char test_root[] = "/tmp/vantage-pgembed-XXXXXX";
static char test_state[sizeof(test_root) + 16];
static struct pgembed *test_pg;
static PGconn *test_conn;

// Runs on every way out, including a failed assertion in a test: no
// cluster may outlive the test binary.
static void
test_cleanup(void)
{
	if (test_conn != NULL) {
		PQfinish(test_conn);
		test_conn = NULL;
	}
	if (test_pg != NULL) {
		pgembed_stop(test_pg);
		test_pg = NULL;
	}
}

// A test runner's timeout or ^C kills us with a signal, which skips
// atexit: ask the postmaster for a fast shutdown (SIGINT) using only
// async-signal-safe calls, then die of the same signal.
static void
test_on_signal(int sig)
{
	pgtest_die_on_signal(test_state, sig);
}

static int
test_teardown(void **state)
{
	(void)state;
	test_cleanup();
	return 0;
}

static int
test_group_setup(void **state)
{
	(void)state;
	return pgtest_mkdir(test_root, test_state, sizeof(test_state));
}

static int
test_group_teardown(void **state)
{
	(void)state;
	test_cleanup();
	pgtest_remove_tree(test_root);
	return 0;
}

static long
test_query_long(const char *sql)
{
	PGresult *res = PQexec(test_conn, sql);
	long value;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		fprintf(stderr, "query \"%s\" failed: %s", sql, PQerrorMessage(test_conn));
		PQclear(res);
		fail();
	}
	value = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return value;
}

static void
test_command(const char *sql)
{
	PGresult *res = PQexec(test_conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		fprintf(stderr, "command \"%s\" failed: %s", sql, PQerrorMessage(test_conn));
	PQclear(res);
	assert_true(ok);
}

static void
test_connect(const char *conninfo)
{
	test_conn = PQconnectdb(conninfo);
	if (PQstatus(test_conn) != CONNECTION_OK)
		fail_msg("could not connect with \"%s\": %s", conninfo, PQerrorMessage(test_conn));
}

static long
test_postmaster_pid(void)
{
	char path[sizeof(test_state) + 32];
	long pid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/pg/postmaster.pid", test_state);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return pid;
}

static void
test_start_and_migrate(void **state)
{
	char expected[256];
	int64_t start;
	char *conninfo = NULL;
	int version;

	(void)state;
	start = clock_mono_us();
	test_pg = pgembed_start(test_state, &conninfo);
	assert_non_null(test_pg);
	printf("initdb + start + createdb took %.2f s\n", (double)(clock_mono_us() - start) / 1e6);
	snprintf(expected, sizeof(expected), "host=%s/pg port=5432 dbname=vantage user=vantage",
	    test_state);
	assert_string_equal(conninfo, expected);
	test_connect(conninfo);
	free(conninfo);

	version = migrate_apply(test_conn);
	assert_true(version >= 1);
	assert_int_equal(migrate_apply(test_conn), version);
	assert_int_equal(test_query_long("SELECT count(*) FROM schema_version"),
	    (long)sql_migrations_count);

	assert_int_equal(test_query_long(
			     "SELECT count(*) FROM unnest(ARRAY['results', 'agent_progress', "
			     "'targets']) AS t(name) WHERE to_regclass(name) IS NOT NULL"),
	    3);
	assert_int_equal(
	    test_query_long("SELECT vantage_ensure_partitions(current_date, current_date + 2)"), 3);
	assert_int_equal(
	    test_query_long("SELECT vantage_ensure_partitions(current_date, current_date + 2)"), 0);

	// A schema from the future must be refused, not written into.
	test_command("INSERT INTO schema_version (version, name) VALUES (99999, 'future')");
	assert_int_equal(migrate_apply(test_conn), -1);
	test_command("DELETE FROM schema_version WHERE version = 99999");
	assert_int_equal(migrate_apply(test_conn), version);

	PQfinish(test_conn);
	test_conn = NULL;
	pgembed_stop(test_pg);
	test_pg = NULL;
	assert_int_equal(test_postmaster_pid(), -1);
}

// An aggregator killed with SIGKILL leaves its server running; the next
// start must use that server, not fail on its lock file or start another.
static void
test_adopt_after_kill(void **state)
{
	char left_conninfo[512] = "";
	char *conninfo = NULL;
	int fds[2], status;
	long pid_before;
	ssize_t n;
	pid_t child;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	child = fork();
	assert_true(child != -1);
	if (child == 0) {
		struct pgembed *pg;
		char *info = NULL;

		close(fds[0]);
		pg = pgembed_start(test_state, &info);
		if (pg == NULL)
			_exit(1);
		(void)!write(fds[1], info, strlen(info));
		raise(SIGKILL);
		_exit(2);
	}
	close(fds[1]);
	n = read(fds[0], left_conninfo, sizeof(left_conninfo) - 1);
	close(fds[0]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(n > 0);
	left_conninfo[n] = '\0';
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	pid_before = test_postmaster_pid();
	assert_true(pid_before > 0);
	assert_int_equal(kill((pid_t)pid_before, 0), 0);

	test_pg = pgembed_start(test_state, &conninfo);
	assert_non_null(test_pg);
	assert_string_equal(conninfo, left_conninfo);
	assert_int_equal(test_postmaster_pid(), pid_before);
	test_connect(conninfo);
	free(conninfo);
	assert_true(migrate_apply(test_conn) >= 1);

	PQfinish(test_conn);
	test_conn = NULL;
	pgembed_stop(test_pg);
	test_pg = NULL;
	assert_int_equal(test_postmaster_pid(), -1);
}

static void
test_socket_path_too_long(void **state)
{
	char long_dir[256];
	char *conninfo = (char *)"untouched";

	(void)state;
	snprintf(long_dir, sizeof(long_dir), "%s/%0100d", test_root, 0);
	assert_null(pgembed_start(long_dir, &conninfo));
	assert_null(conninfo);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_start_and_migrate, test_teardown),
		cmocka_unit_test_teardown(test_adopt_after_kill, test_teardown),
		cmocka_unit_test_teardown(test_socket_path_too_long, test_teardown),
	};
	const char *why = pgtest_cannot_run();

	if (why != NULL) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	log_init("test_pgembed", LOG_LEVEL_INFO);
	atexit(test_cleanup);
	signal(SIGINT, test_on_signal);
	signal(SIGTERM, test_on_signal);
	signal(SIGHUP, test_on_signal);
	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
