-- SPDX-License-Identifier: Apache-2.0
--
-- vantage schema, version 1: agents, delivery progress, targets and the
-- day-partitioned results table.  Exactly-once storage comes from
-- agent_progress being advanced in the same transaction as the rows it
-- covers, so results carries no per-row unique index (DESIGN.md §5, §7).

CREATE TABLE regions (
	id      serial PRIMARY KEY,
	name    text NOT NULL UNIQUE,
	domain  text
);

CREATE TABLE agents (
	id          serial PRIMARY KEY,
	name        text NOT NULL UNIQUE,
	region      text NOT NULL,
	version     text,
	first_seen  timestamptz NOT NULL DEFAULT now(),
	last_seen   timestamptz NOT NULL DEFAULT now()
);

-- Highest seq of each (agent, epoch) durably stored; rows with
-- seq <= acked_seq are duplicates and are skipped.
CREATE TABLE agent_progress (
	agent_id    integer NOT NULL REFERENCES agents(id),
	epoch       bigint NOT NULL,
	acked_seq   bigint NOT NULL DEFAULT 0,
	updated_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (agent_id, epoch)
);

-- Seqs an agent had to drop (spool full), so the store knows what is missing.
CREATE TABLE gaps (
	agent_id     integer NOT NULL REFERENCES agents(id),
	epoch        bigint NOT NULL,
	first_seq    bigint NOT NULL,
	last_seq     bigint NOT NULL,
	recorded_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (agent_id, epoch, first_seq),
	CHECK (first_seq <= last_seq)
);

CREATE TABLE targets (
	id          serial PRIMARY KEY,
	key         text NOT NULL UNIQUE,
	spec        jsonb NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	retired_at  timestamptz
);

-- One row per probe result.  Narrow types: durations in microseconds as
-- integer, enums as smallint (values of proto/vantage.proto), scheduled_at
-- kept as the delay from schedule to start.
CREATE TABLE results (
	started_at      timestamptz NOT NULL,
	agent_id        integer NOT NULL,
	target_id       integer NOT NULL,
	epoch           bigint NOT NULL,
	seq             bigint NOT NULL,
	config_version  integer NOT NULL,
	sched_delay_us  integer NOT NULL,
	outcome         smallint NOT NULL,
	reason          smallint NOT NULL,
	trigger         smallint NOT NULL,
	agent_state     smallint NOT NULL,
	http_status     smallint NOT NULL,
	dns_us          integer NOT NULL,
	connect_us      integer NOT NULL,
	tls_us          integer NOT NULL,
	ttfb_us         integer NOT NULL,
	total_us        integer NOT NULL,
	bytes           integer NOT NULL,
	tls_expiry      timestamptz,
	peer            text,
	error           text
) PARTITION BY RANGE (started_at);

CREATE INDEX results_target_time ON results (target_id, started_at);

-- Catches rows outside every daily partition rather than failing the batch.
CREATE TABLE results_default PARTITION OF results DEFAULT;

-- Creates the daily partitions results_YYYYMMDD covering [from_day, to_day].
-- Called by the aggregator at start and every hour.
CREATE FUNCTION vantage_ensure_partitions(from_day date, to_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	d date := from_day;
	created integer := 0;
	part text;
BEGIN
	WHILE d <= to_day LOOP
		part := 'results_' || to_char(d, 'YYYYMMDD');
		IF to_regclass(part) IS NULL THEN
			EXECUTE format('CREATE TABLE %I PARTITION OF results FOR VALUES FROM (%L) TO (%L)',
				part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
			created := created + 1;
		END IF;
		d := d + 1;
	END LOOP;
	RETURN created;
END
$$;
