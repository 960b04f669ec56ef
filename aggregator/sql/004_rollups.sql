-- SPDX-License-Identifier: Apache-2.0
--
-- vantage schema, version 4: rollups and retention (DESIGN.md §7, §8).
-- The status page and the API read these tables, never raw results, and
-- retention drops whole daily partitions of results, never single rows.
--
-- rollup_minute: per (target, region, minute) the number of results by
-- outcome (proto/vantage.proto: 1 UP, 2 DOWN, anything else "other") and a
-- latency histogram of the UP results' total_us (a failed probe's duration
-- is its timeout, not the service's latency), kept sparse as two arrays of
-- equal length: bucket indexes ascending and their counts.  The buckets are
-- those of common/histogram.h; vantage_histogram_bucket below must stay
-- the same formula as histogram_bucket() (tests/unit/test_rollup.c checks
-- them against each other on every bucket edge).
--
-- rollup_day: per (target, UTC day) the time up, down and unknown, derived
-- from the minute rows: a minute counts by the majority of its results
-- across regions (down when DOWN results outnumber UP ones, else up when it
-- has any UP result), a minute with no UP or DOWN result is unknown, and
-- for today only the minutes already past count.  maintenance_s is 0 until
-- maintenance windows exist.  p50/p95 come from the merged minute
-- histograms of every region.

CREATE TABLE rollup_minute (
	target_id  integer NOT NULL,
	region     text NOT NULL,
	minute     timestamptz NOT NULL,
	n          integer NOT NULL,
	up         integer NOT NULL,
	down       integer NOT NULL,
	other      integer NOT NULL,
	buckets    integer[] NOT NULL,
	counts     integer[] NOT NULL,
	PRIMARY KEY (target_id, region, minute),
	CHECK (n = up + down + other),
	CHECK (cardinality(buckets) = cardinality(counts))
);
-- Day rollups and retention read by time across targets.
CREATE INDEX rollup_minute_minute ON rollup_minute (minute);

CREATE TABLE rollup_day (
	target_id      integer NOT NULL,
	day            date NOT NULL,
	up_s           integer NOT NULL,
	down_s         integer NOT NULL,
	unknown_s      integer NOT NULL,
	maintenance_s  integer NOT NULL DEFAULT 0,
	p50_us         bigint,           -- NULL: no UP result that day
	p95_us         bigint,
	n              bigint NOT NULL,
	PRIMARY KEY (target_id, day)
);

-- The histogram bucket of a latency in µs: common/histogram.c's formula,
-- in the same float8 arithmetic, so both agree on every value.
CREATE FUNCTION vantage_histogram_bucket(total_us bigint)
RETURNS integer LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT least(floor(ln(greatest(total_us, 1)::float8) / ln(1.02::float8))::integer, 1120)
$$;

-- The geometric midpoint of a bucket, in whole µs (histogram_bucket_mid).
CREATE FUNCTION vantage_histogram_mid(bucket integer)
RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT round(power(1.02::float8, bucket + 0.5))::bigint
$$;

-- Recomputes from raw results every whole minute that [from_at, to_at)
-- touches and upserts it: running it again, or over a range that late
-- results reached, gives the same rows as running it once after they all
-- arrived; a row that would not change is not rewritten, so running it
-- again over the same hours leaves no dead rows.  It never deletes: a
-- minute whose raw rows are gone (dropped by retention) keeps its rollup.
-- Returns the number of rows inserted or changed.
CREATE FUNCTION vantage_rollup_minutes(from_at timestamptz, to_at timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	lo timestamptz := date_trunc('minute', from_at);
	hi timestamptz := date_trunc('minute', to_at);
	written integer;
BEGIN
	IF hi < to_at THEN
		hi := hi + interval '1 minute';
	END IF;
	WITH raw AS (
		SELECT r.target_id, a.region, date_trunc('minute', r.started_at) AS minute,
			r.outcome, vantage_histogram_bucket(r.total_us) AS bucket
		FROM results r JOIN agents a ON a.id = r.agent_id
		WHERE r.started_at >= lo AND r.started_at < hi
	), per_bucket AS (
		SELECT target_id, region, minute, bucket, count(*)::integer AS c
		FROM raw WHERE outcome = 1
		GROUP BY target_id, region, minute, bucket
	), hist AS (
		SELECT target_id, region, minute,
			array_agg(bucket ORDER BY bucket) AS buckets,
			array_agg(c ORDER BY bucket) AS counts
		FROM per_bucket GROUP BY target_id, region, minute
	), outcomes AS (
		SELECT target_id, region, minute, count(*)::integer AS n,
			(count(*) FILTER (WHERE outcome = 1))::integer AS up,
			(count(*) FILTER (WHERE outcome = 2))::integer AS down,
			(count(*) FILTER (WHERE outcome NOT IN (1, 2)))::integer AS other
		FROM raw GROUP BY target_id, region, minute
	)
	INSERT INTO rollup_minute AS m (target_id, region, minute, n, up, down, other, buckets, counts)
	SELECT o.target_id, o.region, o.minute, o.n, o.up, o.down, o.other,
		coalesce(h.buckets, '{}'), coalesce(h.counts, '{}')
	FROM outcomes o LEFT JOIN hist h USING (target_id, region, minute)
	ON CONFLICT (target_id, region, minute) DO UPDATE
	SET n = excluded.n, up = excluded.up, down = excluded.down, other = excluded.other,
		buckets = excluded.buckets, counts = excluded.counts
	WHERE (m.n, m.up, m.down, m.other, m.buckets, m.counts) IS DISTINCT FROM
		(excluded.n, excluded.up, excluded.down, excluded.other, excluded.buckets,
		excluded.counts);
	GET DIAGNOSTICS written = ROW_COUNT;
	RETURN written;
END
$$;

-- Recomputes the day rows of every UTC day in [from_day, to_day] from the
-- minute rollups (never from raw results), for each target that existed
-- on the day or has minute rows in it; upserts, so it is idempotent, and
-- leaves unchanged rows alone.  Returns the number of rows inserted or
-- changed.
CREATE FUNCTION vantage_rollup_days(from_day date, to_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	written integer;
BEGIN
	WITH days AS (
		SELECT d::date AS day,
			d::timestamp AT TIME ZONE 'UTC' AS day_start,
			(d::timestamp + interval '1 day') AT TIME ZONE 'UTC' AS day_end
		FROM generate_series(from_day::timestamp, to_day::timestamp, interval '1 day') AS d
	), mins AS (
		SELECT m.target_id, d.day, m.minute, sum(m.n) AS n,
			sum(m.up) AS up, sum(m.down) AS down
		FROM days d JOIN rollup_minute m
			ON m.minute >= d.day_start AND m.minute < d.day_end
		GROUP BY m.target_id, d.day, m.minute
	), states AS (
		SELECT target_id, day, sum(n) AS n,
			count(*) FILTER (WHERE down > up) AS down_m,
			count(*) FILTER (WHERE up >= down AND up > 0) AS up_m
		FROM mins GROUP BY target_id, day
	), merged AS (
		SELECT m.target_id, d.day, b.bucket, sum(b.c) AS c
		FROM days d JOIN rollup_minute m
			ON m.minute >= d.day_start AND m.minute < d.day_end
		CROSS JOIN LATERAL unnest(m.buckets, m.counts) AS b(bucket, c)
		GROUP BY m.target_id, d.day, b.bucket
	), ranked AS (
		SELECT target_id, day, bucket,
			sum(c) OVER (PARTITION BY target_id, day ORDER BY bucket) AS seen,
			sum(c) OVER (PARTITION BY target_id, day) AS total
		FROM merged
	), pct AS (
		-- Nearest rank, as histogram_percentile and percentile_disc.
		SELECT target_id, day,
			vantage_histogram_mid(min(bucket) FILTER (WHERE seen >= ceil(0.50 * total))) AS p50,
			vantage_histogram_mid(min(bucket) FILTER (WHERE seen >= ceil(0.95 * total))) AS p95
		FROM ranked GROUP BY target_id, day
	), targets_of_day AS (
		SELECT t.id AS target_id, d.day FROM days d JOIN targets t
			ON t.created_at < d.day_end AND (t.retired_at IS NULL OR t.retired_at >= d.day_start)
		UNION
		SELECT target_id, day FROM states
	), elapsed AS (
		SELECT day, greatest(0, extract(epoch FROM least(now(), day_end) - day_start))::integer AS s
		FROM days
	)
	INSERT INTO rollup_day AS r (target_id, day, up_s, down_s, unknown_s, maintenance_s,
		p50_us, p95_us, n)
	SELECT x.target_id, x.day, 60 * coalesce(s.up_m, 0), 60 * coalesce(s.down_m, 0),
		greatest(0, e.s - 60 * coalesce(s.up_m, 0) - 60 * coalesce(s.down_m, 0)), 0,
		p.p50, p.p95, coalesce(s.n, 0)
	FROM targets_of_day x
	JOIN elapsed e USING (day)
	LEFT JOIN states s USING (target_id, day)
	LEFT JOIN pct p USING (target_id, day)
	ON CONFLICT (target_id, day) DO UPDATE
	SET up_s = excluded.up_s, down_s = excluded.down_s, unknown_s = excluded.unknown_s,
		maintenance_s = excluded.maintenance_s, p50_us = excluded.p50_us,
		p95_us = excluded.p95_us, n = excluded.n
	WHERE (r.up_s, r.down_s, r.unknown_s, r.maintenance_s, r.p50_us, r.p95_us, r.n)
		IS DISTINCT FROM (excluded.up_s, excluded.down_s, excluded.unknown_s,
		excluded.maintenance_s, excluded.p50_us, excluded.p95_us, excluded.n);
	GET DIAGNOSTICS written = ROW_COUNT;
	RETURN written;
END
$$;

-- Drops the daily partitions results_YYYYMMDD of days before before_day
-- (whole tables: DROP is instant and leaves no dead rows to vacuum, where
-- a DELETE would rewrite the table).  results_default is never dropped.
-- Returns the number of partitions dropped.
CREATE FUNCTION vantage_drop_partitions(before_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	part text;
	dropped integer := 0;
BEGIN
	FOR part IN
		SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'results'::regclass
			AND c.relname ~ '^results_[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$'
			AND to_date(substr(c.relname, 9), 'YYYYMMDD') < before_day
		ORDER BY c.relname
	LOOP
		EXECUTE format('DROP TABLE %I', part);
		dropped := dropped + 1;
	END LOOP;
	RETURN dropped;
END
$$;

-- Deletes rollup rows older than before_day (minute rows before its UTC
-- midnight, day rows of earlier days).  Returns the number deleted.
CREATE FUNCTION vantage_drop_rollups(before_day date)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	minutes bigint;
	days bigint;
BEGIN
	DELETE FROM rollup_minute WHERE minute < before_day::timestamp AT TIME ZONE 'UTC';
	GET DIAGNOSTICS minutes = ROW_COUNT;
	DELETE FROM rollup_day WHERE day < before_day;
	GET DIAGNOSTICS days = ROW_COUNT;
	RETURN minutes + days;
END
$$;
