// SPDX-License-Identifier: Apache-2.0
//
// Schema migrations: aggregator/sql/NNN_name.sql files, embedded into the
// binary at build time (tools/embed-sql.sh), applied in order, each in its
// own transaction, under a PostgreSQL advisory lock so that two aggregators
// starting together never apply one twice.
#ifndef VANTAGE_MIGRATE_H
#define VANTAGE_MIGRATE_H

#include <stddef.h>

struct sql_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct sql_migration sql_migrations[];
extern const size_t sql_migrations_count;

struct pg_conn;
// Applies every migration newer than schema_version on the (blocking)
// connection conn (a PGconn *).  Returns the schema version reached, or -1
// after logging why.
int migrate_apply(void *conn);

#endif
