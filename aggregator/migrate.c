// SPDX-License-Identifier: Apache-2.0
//
// Applies the embedded schema migrations (migrate.h) over a blocking libpq
// connection, before the event loop runs.  Each migration runs in its own
// transaction together with the schema_version row that records it, so a
// migration is either applied and recorded or neither; a session advisory
// lock serialises aggregators that start at the same time.  It must never
// touch a database whose schema is newer than this binary knows: an older
// aggregator writing into a newer schema corrupts data silently.
#include "migrate.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

// "vantage1" as a big-endian int64: the advisory lock key of migrations,
// fixed forever so that every aggregator version agrees on it.
#define MIGRATE_LOCK_KEY "8530220615345857841"

// Logs a failed result the way psql does, split into PostgreSQL's fields.
// sql (may be NULL) lets the error position become a line number.
static void
migrate_log_error(const char *what, const PGresult *res, PGconn *conn, const char *sql)
{
	const char *primary, *detail, *hint, *position, *context;

	if (res == NULL) {
		log_warnx("could not %s: %s", what, PQerrorMessage(conn));
		return;
	}
	primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	position = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
	context = PQresultErrorField(res, PG_DIAG_CONTEXT);
	if (primary == NULL) {
		log_warnx("could not %s: %s", what, PQresultErrorMessage(res));
		return;
	}
	if (position != NULL && sql != NULL) {
		// The position counts characters from 1 in the whole script.
		long pos = strtol(position, NULL, 10);
		int line = 1;

		for (long i = 0; i + 1 < pos && sql[i] != '\0'; i++)
			line += sql[i] == '\n';
		log_warnx("could not %s: %s (line %d)", what, primary, line);
	} else {
		log_warnx("could not %s: %s", what, primary);
	}
	if (detail != NULL)
		log_warnx("detail: %s", detail);
	if (hint != NULL)
		log_warnx("hint: %s", hint);
	if (context != NULL)
		log_warnx("context: %s", context);
}

// Runs one statement that returns nothing or rows; 0 or -1 after logging.
static int
migrate_exec(PGconn *conn, const char *what, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		migrate_log_error(what, res, conn, NULL);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

// Runs a query returning one integer in one row; -1 after logging, else
// stores it in *value (NULL reads as 0).
static int
migrate_query_int(PGconn *conn, const char *what, const char *sql, long *value)
{
	PGresult *res = PQexec(conn, sql);
	char *end;
	int rc = -1;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		migrate_log_error(what, res, conn, NULL);
		goto done;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		log_warnx("could not %s: expected one value, got %d rows of %d "
			  "columns",
		    what, PQntuples(res), PQnfields(res));
		goto done;
	}
	*value = 0;
	if (!PQgetisnull(res, 0, 0)) {
		*value = strtol(PQgetvalue(res, 0, 0), &end, 10);
		if (*end != '\0') {
			log_warnx("could not %s: \"%s\" is not an integer", what,
			    PQgetvalue(res, 0, 0));
			goto done;
		}
	}
	rc = 0;
done:
	PQclear(res);
	return rc;
}

// The embedded list must be strictly ascending, or "newer than applied"
// means nothing.  Returns the newest version, or -1.
static int
migrate_known_version(void)
{
	int newest = 0;

	for (size_t i = 0; i < sql_migrations_count; i++) {
		const struct sql_migration *m = &sql_migrations[i];

		if (m->name == NULL || m->sql == NULL || m->version <= newest) {
			log_warnx("embedded migration %zu (\"%s\", version %d) is out "
				  "of order",
			    i, m->name != NULL ? m->name : "?", m->version);
			return -1;
		}
		newest = m->version;
	}
	return newest;
}

static int
migrate_one(PGconn *conn, const struct sql_migration *m)
{
	char what[256], version[16];
	const char *params[2] = { version, m->name };
	PGresult *res;

	snprintf(what, sizeof(what), "apply migration \"%s\"", m->name);
	snprintf(version, sizeof(version), "%d", m->version);
	log_info("applying migration \"%s\"", m->name);
	if (migrate_exec(conn, "begin migration", "BEGIN") == -1)
		return -1;
	// One PQexec runs the whole multi-statement script inside our BEGIN.
	res = PQexec(conn, m->sql);
	if (res == NULL ||
	    (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)) {
		migrate_log_error(what, res, conn, m->sql);
		PQclear(res);
		goto rollback;
	}
	PQclear(res);
	res = PQexecParams(conn, "INSERT INTO schema_version (version, name) VALUES ($1::int, $2)",
	    2, NULL, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		migrate_log_error(what, res, conn, NULL);
		PQclear(res);
		goto rollback;
	}
	PQclear(res);
	if (migrate_exec(conn, what, "COMMIT") == -1)
		goto rollback;
	return 0;
rollback:
	(void)migrate_exec(conn, "roll back migration", "ROLLBACK");
	return -1;
}

static int
migrate_locked(PGconn *conn)
{
	long exists = 0, applied = 0;
	int known;

	known = migrate_known_version();
	if (known == -1)
		return -1;
	if (migrate_query_int(conn, "look up table \"schema_version\"",
		"SELECT (to_regclass('schema_version') IS NOT NULL)::int", &exists) == -1)
		return -1;
	if (!exists &&
	    migrate_exec(conn, "create table \"schema_version\"",
		"CREATE TABLE schema_version ("
		" version int PRIMARY KEY,"
		" name text NOT NULL,"
		" applied_at timestamptz NOT NULL DEFAULT now())") == -1)
		return -1;
	if (migrate_query_int(conn, "read schema version",
		"SELECT max(version) FROM schema_version", &applied) == -1)
		return -1;
	if (applied > known) {
		log_warnx("database schema version %ld is newer than the newest "
			  "this aggregator knows (%d)",
		    applied, known);
		log_warnx("hint: a newer vantage-aggregator has migrated this "
			  "database; run that version or restore a matching backup");
		return -1;
	}
	for (size_t i = 0; i < sql_migrations_count; i++) {
		if (sql_migrations[i].version <= applied)
			continue;
		if (migrate_one(conn, &sql_migrations[i]) == -1)
			return -1;
		applied = sql_migrations[i].version;
	}
	return (int)applied;
}

int
migrate_apply(void *conn_ptr)
{
	PGconn *conn = conn_ptr;
	long got = 0;
	int version;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		log_warnx("could not apply migrations: not connected to the database");
		return -1;
	}
	if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
		log_warnx("could not apply migrations: connection is inside a "
			  "transaction");
		return -1;
	}
	if (migrate_query_int(conn, "take migration lock",
		"SELECT pg_try_advisory_lock(" MIGRATE_LOCK_KEY ")::int", &got) == -1)
		return -1;
	if (!got) {
		log_info("waiting for another aggregator to finish migrations");
		if (migrate_exec(conn, "take migration lock",
			"SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")") == -1)
			return -1;
	}
	version = migrate_locked(conn);
	if (migrate_exec(conn, "release migration lock",
		"SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")") == -1)
		version = -1;
	if (version != -1)
		log_info("database schema is at version %d", version);
	return version;
}
