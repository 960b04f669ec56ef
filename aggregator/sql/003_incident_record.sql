-- SPDX-License-Identifier: Apache-2.0
--
-- vantage schema, version 3: one function for what every change of an
-- incident writes beside the incident row itself (incident.c): its
-- timeline events, and its alerts unless a silence covers the target.
-- Called from the statement that opens, resolves or settles the incident,
-- so the three still commit together or not at all.
--
--   events:  [{at, kind, region, message}]
--   alerts:  [{channel, event, payload}]; extra is merged into each payload
--
-- Returns the number of alerts queued.

CREATE FUNCTION incident_record(incident bigint, events jsonb, alerts jsonb, target_key text,
	extra jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE sql VOLATILE AS $$
	INSERT INTO incident_events (incident_id, at, kind, region, message)
	SELECT incident, e.at, e.kind, e.region, e.message
	FROM jsonb_to_recordset(coalesce(events, '[]'))
		AS e(at timestamptz, kind text, region text, message text);
	WITH queued AS (
		INSERT INTO alert_outbox (incident_id, channel, event, payload)
		SELECT incident, a.channel, a.event, a.payload || coalesce(extra, '{}')
		FROM jsonb_to_recordset(coalesce(alerts, '[]'))
			AS a(channel text, event text, payload jsonb)
		WHERE NOT EXISTS (SELECT 1 FROM silences s
			WHERE (s.target_key IS NULL OR s.target_key = incident_record.target_key)
			AND now() >= s.starts_at AND now() < s.ends_at)
		RETURNING 1)
	SELECT count(*)::integer FROM queued;
$$;
