-- SPDX-License-Identifier: Apache-2.0
--
-- vantage schema, version 5: post-mortems edited through the API.  Once
-- people have written into a draft (PUT /api/v1/incidents/ID/postmortem),
-- a later automatic draft of the same incident (a reopened outage that
-- resolves again) no longer overwrites it.

ALTER TABLE incidents ADD COLUMN postmortem_edited_at timestamptz;
ALTER TABLE incidents ADD COLUMN postmortem_edited_by text;
