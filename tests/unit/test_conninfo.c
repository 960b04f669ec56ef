// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for aggregator/conninfo: a password in a `database:` value
// must never survive into what may be logged, in URL or key=value form,
// quoted or not, and everything else must stay readable as it was written.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conninfo.h"

static void
check(const char *in, const char *want)
{
	char *out = conninfo_redact(in);

	assert_string_equal(out, want);
	assert_null(strstr(out, "s3cret"));
	free(out);
}

static void
test_url(void **state)
{
	check("postgresql://vantage:s3cret@db.example:5432/vantage?sslmode=verify-full",
	    "postgresql://vantage:" CONNINFO_REDACTED
	    "@db.example:5432/vantage?sslmode=verify-full");
	check("postgres://vantage:s3cret@db/vantage",
	    "postgres://vantage:" CONNINFO_REDACTED "@db/vantage");
	check("postgresql://vantage@db/vantage?sslmode=require&password=s3cret&connect_timeout=5",
	    "postgresql://vantage@db/vantage?sslmode=require&password=" CONNINFO_REDACTED
	    "&connect_timeout=5");
	check("postgresql://db/vantage?password=s3cret",
	    "postgresql://db/vantage?password=" CONNINFO_REDACTED);
	// An '@' after the host is not user information.
	check("postgresql://db/vantage?application_name=a:b@c",
	    "postgresql://db/vantage?application_name=a:b@c");
	check("postgresql://vantage@db/vantage", "postgresql://vantage@db/vantage");
}

static void
test_pairs(void **state)
{
	check("host=db password=s3cret user=vantage",
	    "host=db password=" CONNINFO_REDACTED " user=vantage");
	check("password = 's3cret with \\' quote' dbname=vantage",
	    "password = " CONNINFO_REDACTED " dbname=vantage");
	check("host=db password='s3cret'", "host=db password=" CONNINFO_REDACTED);
	check("host=/var/lib/vantage/pg port=5432 dbname=vantage user=vantage",
	    "host=/var/lib/vantage/pg port=5432 dbname=vantage user=vantage");
	// A key that only starts with "password" is another key.
	check("passwordfile=x host=db", "passwordfile=x host=db");
	check("", "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_pairs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
