// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for the pure part of agent/selfcheck: the rule that turns one
// round of control results into HEALTHY or IMPAIRED, and the reason text
// that goes to the aggregator.  Checked: no controls is always healthy; one
// control decides alone; a majority decides either way and a tie keeps the
// previous state; a dns failure is impaired even in a minority; every kind
// of failure counts; and the reason stays within its buffer, cut at whole
// entries, whatever the number and length of the keys.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "selfcheck.h"

#define HEALTHY VANTAGE__AGENT_STATE__AGENT_STATE_HEALTHY
#define IMPAIRED VANTAGE__AGENT_STATE__AGENT_STATE_IMPAIRED
#define UP VANTAGE__OUTCOME__OUTCOME_UP
#define DOWN VANTAGE__OUTCOME__OUTCOME_DOWN
#define AGENT_ERROR VANTAGE__OUTCOME__OUTCOME_AGENT_ERROR

static struct selfcheck_sample
ok(const char *key)
{
	return (struct selfcheck_sample){ key, UP, VANTAGE__REASON__REASON_NONE };
}

static struct selfcheck_sample
failed(const char *key, int reason)
{
	return (struct selfcheck_sample){ key, DOWN, reason };
}

static void
test_no_controls(void **state)
{
	char reason[SELFCHECK_REASON_MAX + 1] = "junk";

	// Nothing to judge by: never impaired, even if it was before.
	assert_int_equal(selfcheck_judge(NULL, 0, HEALTHY, reason, sizeof(reason)), HEALTHY);
	assert_int_equal(selfcheck_judge(NULL, 0, IMPAIRED, reason, sizeof(reason)), HEALTHY);
	assert_string_equal(reason, "");
}

static void
test_one_control(void **state)
{
	struct selfcheck_sample s[1];
	char reason[SELFCHECK_REASON_MAX + 1];

	s[0] = failed("control-1", VANTAGE__REASON__REASON_TIMEOUT);
	assert_int_equal(selfcheck_judge(s, 1, HEALTHY, reason, sizeof(reason)), IMPAIRED);
	assert_string_equal(reason, "1 of 1 controls failed: control-1 timeout");
	s[0] = ok("control-1");
	assert_int_equal(selfcheck_judge(s, 1, IMPAIRED, reason, sizeof(reason)), HEALTHY);
	assert_string_equal(reason, "");
}

static void
test_two_controls(void **state)
{
	struct selfcheck_sample s[2];
	char reason[SELFCHECK_REASON_MAX + 1];

	s[0] = failed("control-1", VANTAGE__REASON__REASON_TIMEOUT);
	s[1] = failed("control-2", VANTAGE__REASON__REASON_REFUSED);
	assert_int_equal(selfcheck_judge(s, 2, HEALTHY, reason, sizeof(reason)), IMPAIRED);
	assert_string_equal(reason, "2 of 2 controls failed: control-1 timeout, control-2 refused");

	// One of two: no majority either way, the state stays what it was.
	s[1] = ok("control-2");
	assert_int_equal(selfcheck_judge(s, 2, HEALTHY, reason, sizeof(reason)), HEALTHY);
	assert_int_equal(selfcheck_judge(s, 2, IMPAIRED, reason, sizeof(reason)), IMPAIRED);
	assert_string_equal(reason, "1 of 2 controls failed: control-1 timeout");

	s[0] = ok("control-1");
	assert_int_equal(selfcheck_judge(s, 2, IMPAIRED, reason, sizeof(reason)), HEALTHY);
	assert_string_equal(reason, "");
}

// Every combination of three controls up or down: impaired exactly when
// two or three failed, from either previous state.
static void
test_three_controls_majority(void **state)
{
	static const char *const keys[] = { "a", "b", "c" };
	struct selfcheck_sample s[3];
	char reason[SELFCHECK_REASON_MAX + 1];

	for (unsigned mask = 0; mask < 8; mask++) {
		unsigned n_failed = 0;

		for (unsigned i = 0; i < 3; i++) {
			bool down = mask & (1u << i);

			s[i] = down ? failed(keys[i], VANTAGE__REASON__REASON_CONNECT_TIMEOUT) :
				      ok(keys[i]);
			n_failed += down;
		}
		for (int prev = HEALTHY; prev <= IMPAIRED; prev++) {
			int want = n_failed >= 2 ? IMPAIRED : HEALTHY;

			assert_int_equal(selfcheck_judge(s, 3, prev, reason, sizeof(reason)), want);
			if (n_failed == 0)
				assert_string_equal(reason, "");
			else
				assert_true(strncmp(reason,
						n_failed == 1     ? "1 of 3" :
						    n_failed == 2 ? "2 of 3" :
								    "3 of 3",
						6) == 0);
		}
	}
	s[0] = failed("a", VANTAGE__REASON__REASON_HTTP_STATUS);
	s[1] = ok("b");
	s[2] = failed("c", VANTAGE__REASON__REASON_RESET);
	assert_int_equal(selfcheck_judge(s, 3, HEALTHY, reason, sizeof(reason)), IMPAIRED);
	assert_string_equal(reason, "2 of 3 controls failed: a http_status, c reset");
}

// The agent's resolver failing is enough, even when most controls answer.
static void
test_dns_failure(void **state)
{
	struct selfcheck_sample s[3] = { ok("control-1"),
		failed("control-2", VANTAGE__REASON__REASON_DNS), ok("control-3") };
	char reason[SELFCHECK_REASON_MAX + 1];

	assert_int_equal(selfcheck_judge(s, 3, HEALTHY, reason, sizeof(reason)), IMPAIRED);
	assert_string_equal(reason, "dns resolution failed; 1 of 3 controls failed: control-2 dns");
	// With a majority failing anyway, the usual text.
	s[0] = failed("control-1", VANTAGE__REASON__REASON_DNS);
	assert_int_equal(selfcheck_judge(s, 3, HEALTHY, reason, sizeof(reason)), IMPAIRED);
	assert_string_equal(reason, "2 of 3 controls failed: control-1 dns, control-2 dns");
}

// A probe the agent could not even start is a failure too.
static void
test_agent_error_counts(void **state)
{
	struct selfcheck_sample s[1] = { { "control-1", AGENT_ERROR,
	    VANTAGE__REASON__REASON_INTERNAL } };
	char reason[SELFCHECK_REASON_MAX + 1];

	assert_int_equal(selfcheck_judge(s, 1, HEALTHY, reason, sizeof(reason)), IMPAIRED);
	assert_string_equal(reason, "1 of 1 controls failed: control-1 agent_error");
}

// Forty controls with 100-byte keys: the text fits the wire limit, ends in
// " ..." and holds only whole entries.
static void
test_reason_bounded(void **state)
{
	struct selfcheck_sample s[40];
	char keys[40][101];
	char reason[SELFCHECK_REASON_MAX + 1];
	size_t len;

	for (size_t i = 0; i < 40; i++) {
		memset(keys[i], 'k', 100);
		snprintf(keys[i], 4, "%02zu-", i);
		keys[i][3] = 'k';
		keys[i][100] = '\0';
		s[i] = failed(keys[i], VANTAGE__REASON__REASON_TIMEOUT);
	}
	memset(reason, 'x', sizeof(reason));
	assert_int_equal(selfcheck_judge(s, 40, HEALTHY, reason, sizeof(reason)), IMPAIRED);
	len = strlen(reason);
	assert_true(len < sizeof(reason));
	assert_true(len >= 4 && strcmp(reason + len - 4, " ...") == 0);
	assert_true(strncmp(reason, "40 of 40 controls failed: 00-", 29) == 0);
	// Each listed entry ends with its reason: no key is cut in half.
	assert_non_null(strstr(reason, keys[0]));
	assert_non_null(strstr(reason, " timeout ..."));

	// Tiny buffers: never overrun, never a partial entry.
	for (size_t size = 1; size < 80; size++) {
		char small[80];

		memset(small, 'x', sizeof(small));
		assert_int_equal(selfcheck_judge(s, 2, HEALTHY, small, size), IMPAIRED);
		assert_true(strlen(small) < size);
		assert_true(small[0] == '\0' || strncmp(small, "2 of 2 controls failed:", 23) == 0);
		assert_true(small[size] == 'x' || size == sizeof(small) - 1);
	}
	// A zero-length buffer is not written at all.
	reason[0] = 'x';
	assert_int_equal(selfcheck_judge(s, 1, HEALTHY, reason, 0), IMPAIRED);
	assert_int_equal(reason[0], 'x');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_controls),
		cmocka_unit_test(test_one_control),
		cmocka_unit_test(test_two_controls),
		cmocka_unit_test(test_three_controls_majority),
		cmocka_unit_test(test_dns_failure),
		cmocka_unit_test(test_agent_error_counts),
		cmocka_unit_test(test_reason_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
