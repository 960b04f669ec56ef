// SPDX-License-Identifier: Apache-2.0
//
// The embedded default database: with no `database:` in vantage.yml the
// aggregator runs a private PostgreSQL cluster in STATE_DIR/pg, listening on
// a unix socket only (no TCP).  Started as root, the cluster runs as the
// unprivileged user "vantage" (or "postgres"/"nobody" when missing), because
// postgres refuses to run as root.  Blocking, used before the event loop runs,
// except pgembed_supervise, which the loop calls.
#ifndef VANTAGE_PGEMBED_H
#define VANTAGE_PGEMBED_H

struct pgembed;

// Creates the cluster on first use (initdb, database "vantage"), starts it, or
// adopts one already running in that directory (after a crash of the
// aggregator).  *conninfo receives an owned libpq connection string.  Returns
// NULL after logging why.
struct pgembed *pgembed_start(const char *state_dir, char **conninfo);
// Restarts the cluster if its server is no longer running (killed, crashed,
// stopped behind our back): the cluster belongs to the aggregator, which
// keeps it up for as long as it runs.  Never blocks: pg_ctl runs as a child
// reaped on a later call; attempts are 1 s doubling to 30 s apart.  Call it
// every second or so; accepts NULL.
void pgembed_supervise(struct pgembed *pg);
// Stops the cluster (fast shutdown) and frees; accepts NULL.
void pgembed_stop(struct pgembed *pg);

#endif
