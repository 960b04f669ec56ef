// SPDX-License-Identifier: Apache-2.0
//
// When agents have caught up after a database outage; see catchup.h.  It
// only reads the agent registry (acked_seq after each COMMIT, produced from
// heartbeats) and keeps, per agent slot, the produced count to reach.
// Never holds anything at start-up: only an outage seen while running
// starts a hold.
#include "catchup.h"

#include <stdlib.h>

#include "log.h"
#include "xmalloc.h"

struct catchup {
	struct agents *agents;
	bool holding;
	int64_t down_at; // wall µs the outage was first seen
	int64_t up_at;   // wall µs the database was back, 0 while down
	uint64_t *goal;  // per slot: produced to reach, 0 = not known yet
	size_t n_goal;
};

struct catchup *
catchup_new(struct agents *agents)
{
	struct catchup *c = xcalloc(1, sizeof(*c));

	c->agents = agents;
	return c;
}

void
catchup_free(struct catchup *c)
{
	if (c == NULL)
		return;
	free(c->goal);
	free(c);
}

// True when the agent in slot has been acknowledged through what it said
// it had produced after the database came back.
static bool
catchup_agent_done(struct catchup *c, size_t slot, int64_t now)
{
	const struct agent_info *ai = agents_get(c->agents, slot);

	if (!agents_connected(ai, now))
		return true; // its votes abstain anyway
	if (ai->heartbeat_at < c->up_at)
		return false;
	if (c->goal[slot] == 0)
		c->goal[slot] = ai->produced > 0 ? ai->produced : 1;
	return ai->acked_seq >= c->goal[slot] || ai->produced == 0;
}

bool
catchup_update(struct catchup *c, bool database_up, int64_t now)
{
	size_t n = agents_count(c->agents);
	bool done = true;

	if (!database_up) {
		if (!c->holding) {
			log_info("verdicts held while the database is down: agents cannot deliver");
			c->down_at = now;
		}
		c->holding = true;
		c->up_at = 0;
		return true;
	}
	if (!c->holding)
		return false;
	if (c->up_at == 0) {
		c->up_at = now;
		free(c->goal);
		c->goal = xcalloc(n ? n : 1, sizeof(*c->goal));
		c->n_goal = n;
	}
	if (n > c->n_goal) {
		c->goal = xreallocarray(c->goal, n, sizeof(*c->goal));
		for (size_t i = c->n_goal; i < n; i++)
			c->goal[i] = 0;
		c->n_goal = n;
	}
	for (size_t i = 0; i < n; i++)
		done = catchup_agent_done(c, i, now) && done;
	if (!done && now - c->up_at < CATCHUP_MAX_US)
		return true;
	if (done)
		log_info("agents caught up %.1f s after the database came back (%.1f s after it "
			 "went away): verdicts resume",
		    (double)(now - c->up_at) / 1e6, (double)(now - c->down_at) / 1e6);
	else
		log_warnx("agents still catching up %lld s after the database came back: verdicts "
			  "resume anyway",
		    (long long)(CATCHUP_MAX_US / 1000000));
	c->holding = false;
	c->up_at = 0;
	c->down_at = 0;
	return false;
}
