// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for common/curvekey: a generated pair reads back (the public
// key derived from the secret equals NAME.pub), existing files are never
// overwritten, and every malformed file is refused with a message naming
// the file: wrong length, a character outside Z85, two keys, no key, and a
// secret key that group or others may read.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "curvekey.h"

static char dir[64];

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test-curvekey.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void
write_file(const char *name, mode_t mode, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static const char *
path_of(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static void
test_generate_and_read(void **state)
{
	struct curvekey secret, derived, pub;
	char err[512];
	struct stat st;

	assert_int_equal(curvekey_generate(dir, "eu-west", err, sizeof(err)), 0);
	assert_int_equal(stat(path_of("eu-west.key"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(path_of("eu-west.pub"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(
	    curvekey_read_secret(path_of("eu-west.key"), &secret, &derived, err, sizeof(err)), 0);
	assert_int_equal(curvekey_read_public(path_of("eu-west.pub"), &pub, err, sizeof(err)), 0);
	assert_string_equal(derived.z85, pub.z85);
	assert_string_not_equal(secret.z85, pub.z85);
}

static void
test_never_overwrites(void **state)
{
	struct curvekey pub_before, pub_after;
	char err[512];

	assert_int_equal(curvekey_generate(dir, "once", err, sizeof(err)), 0);
	assert_int_equal(curvekey_read_public(path_of("once.pub"), &pub_before, err, sizeof(err)),
	    0);
	assert_int_equal(curvekey_generate(dir, "once", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "once.key"));
	assert_non_null(strstr(err, "never overwritten"));
	assert_int_equal(curvekey_read_public(path_of("once.pub"), &pub_after, err, sizeof(err)),
	    0);
	assert_string_equal(pub_before.z85, pub_after.z85);
	// Only the public file exists: refused too, and no secret left behind.
	unlink(path_of("once.key"));
	assert_int_equal(curvekey_generate(dir, "once", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "once.pub"));
	assert_int_equal(access(path_of("once.key"), F_OK), -1);
}

static void
test_comments_and_crlf(void **state)
{
	struct curvekey pub;
	char err[512];

	write_file("ok.pub", 0644, "# a comment\n\nrq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\r\n");
	assert_int_equal(curvekey_read_public(path_of("ok.pub"), &pub, err, sizeof(err)), 0);
	assert_string_equal(pub.z85, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
}

// Each bad file is refused, and the message names the file.
static void
test_refused(void **state)
{
	static const struct {
		const char *text;
		const char *why;
	} bad[] = {
		{ "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\n",
		    "40 Z85 characters expected, got 39" },
		{ "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7x\n", "got 41" },
		{ "rq:rM>}U?@Lns47E1%kR.o@n%Fcmms\"/@{H8]yf7\n", "not a CurveZMQ key" },
		{ "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\nrq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n",
		    ":2: more than one key" },
		{ "# only a comment\n", "no key in the file" },
		{ "", "no key in the file" },
	};
	struct curvekey k;
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file("bad.pub", 0644, bad[i].text);
		assert_int_equal(curvekey_read_public(path_of("bad.pub"), &k, err, sizeof(err)),
		    -1);
		assert_non_null(strstr(err, path_of("bad.pub")));
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("case %zu: want \"%s\" in \"%s\"", i, bad[i].why, err);
	}
	assert_int_equal(curvekey_read_public(path_of("missing.pub"), &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing.pub"));
}

static void
test_secret_mode(void **state)
{
	struct curvekey secret, pub;
	char err[512];

	write_file("open.key", 0640, "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\n");
	assert_int_equal(curvekey_read_secret(path_of("open.key"), &secret, &pub, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "open.key"));
	assert_non_null(strstr(err, "accessible by group or others (mode 0640)"));
	assert_int_equal(chmod(path_of("open.key"), 0600), 0);
	assert_int_equal(curvekey_read_secret(path_of("open.key"), &secret, &pub, err, sizeof(err)),
	    0);
	// The pair of ZeroMQ's documentation (RFC 26 test vectors).
	assert_string_equal(pub.z85, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
}

static void
test_valid_z85(void **state)
{
	assert_true(curvekey_valid_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", 40));
	assert_false(curvekey_valid_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf", 39));
	assert_false(curvekey_valid_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf ", 40));
	assert_false(curvekey_valid_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\"", 40));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_and_read),
		cmocka_unit_test(test_never_overwrites),
		cmocka_unit_test(test_comments_and_crlf),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_secret_mode),
		cmocka_unit_test(test_valid_z85),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
