-- SPDX-License-Identifier: Apache-2.0
--
-- vantage schema, version 2: incidents, their timeline, public updates,
-- the durable alert outbox and silences (DESIGN.md §6, §7).  A state change,
-- its timeline event and its alerts are written by ONE statement, so a
-- crash loses none of them and never sends an alert for a change that was
-- not recorded.

CREATE TABLE incidents (
	id                bigserial PRIMARY KEY,
	target_id         integer NOT NULL REFERENCES targets(id),
	kind              text NOT NULL CHECK (kind IN ('outage', 'regional', 'blind')),
	state             text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
	started_at        timestamptz NOT NULL,   -- earliest failing probe of the quorum
	detected_at       timestamptz NOT NULL,   -- aggregator time quorum was reached
	resolved_at       timestamptz,            -- probe time recovery quorum held from
	regions           text[] NOT NULL DEFAULT '{}',
	flapping          boolean NOT NULL DEFAULT false,
	postmortem_md     text,
	postmortem_state  text CHECK (postmortem_state IN ('draft', 'published')),
	first_public_at   timestamptz,
	CHECK (resolved_at IS NULL OR state = 'resolved')
);

-- At most one open incident of a kind per target: a restart or a retried
-- statement can never open a second one.
CREATE UNIQUE INDEX incidents_one_open ON incidents (target_id, kind) WHERE state = 'open';
CREATE INDEX incidents_started ON incidents (started_at DESC);

CREATE TABLE incident_events (
	id           bigserial PRIMARY KEY,
	incident_id  bigint NOT NULL REFERENCES incidents(id),
	at           timestamptz NOT NULL,
	kind         text NOT NULL,      -- first_failure, quorum, alert_sent, alert_failed, recovering, resolved, note
	region       text,
	message      text NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, at);

CREATE TABLE incident_updates (
	id           bigserial PRIMARY KEY,
	incident_id  bigint NOT NULL REFERENCES incidents(id),
	at           timestamptz NOT NULL DEFAULT now(),
	state        text NOT NULL CHECK (state IN ('investigating', 'identified', 'monitoring', 'resolved')),
	message      text NOT NULL,
	author       text NOT NULL
);

-- Alerts to deliver.  Written with the state change; the sender marks
-- sent_at after the receiver accepted, or schedules the next attempt.
CREATE TABLE alert_outbox (
	id               bigserial PRIMARY KEY,
	incident_id      bigint NOT NULL REFERENCES incidents(id),
	channel          text NOT NULL,
	event            text NOT NULL,   -- outage, recovery, regional, regional_recovery, blind, blind_recovery, flapping
	payload          jsonb NOT NULL,
	created_at       timestamptz NOT NULL DEFAULT now(),
	attempts         integer NOT NULL DEFAULT 0,
	next_attempt_at  timestamptz NOT NULL DEFAULT now(),
	sent_at          timestamptz,
	last_error       text
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE sent_at IS NULL;

CREATE TABLE silences (
	id          bigserial PRIMARY KEY,
	target_key  text,                 -- NULL: every target
	starts_at   timestamptz NOT NULL,
	ends_at     timestamptz NOT NULL,
	reason      text NOT NULL DEFAULT '',
	created_by  text NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL DEFAULT now(),
	CHECK (starts_at < ends_at)
);
