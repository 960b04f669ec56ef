// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for common/atomic_file: a file is created with the mode asked
// for, replaced whole by a second write, written relative to a directory
// descriptor or by path, and a write that cannot happen leaves the old
// file as it was and no NAME.tmp behind.
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "atomic_file.h"

static char dir[64];

static int
setup(void **state)
{
	umask(0022);
	snprintf(dir, sizeof(dir), "/tmp/test-atomic-file.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

// The whole file at path, NUL-terminated, in buf; its length or -1.
static ssize_t
slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static void
test_create_and_replace_by_path(void **state)
{
	char path[128], tmp[160], text[64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/config", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(atomic_file_write(AT_FDCWD, path, "first version\n", 14,
			     &(struct atomic_file_opts){ .mode = 0640 }),
	    0);
	assert_int_equal(slurp(path, text, sizeof(text)), 14);
	assert_string_equal(text, "first version\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	// Replaced whole, even by something shorter.
	assert_int_equal(atomic_file_write(AT_FDCWD, path, "v2", 2, NULL), 0);
	assert_int_equal(slurp(path, text, sizeof(text)), 2);
	assert_string_equal(text, "v2");
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_relative_to_a_directory(void **state)
{
	char path[128], text[64];
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY);

	assert_true(dir_fd >= 0);
	assert_int_equal(atomic_file_write(dir_fd, "epoch", "42\n", 3, NULL), 0);
	close(dir_fd);
	snprintf(path, sizeof(path), "%s/epoch", dir);
	assert_int_equal(slurp(path, text, sizeof(text)), 3);
	assert_string_equal(text, "42\n");
}

static void
test_failure_keeps_the_old_file(void **state)
{
	char path[128], text[64], sub[128];

	// The directory is gone: nothing can be written, errno says why.
	snprintf(path, sizeof(path), "%s/missing/config", dir);
	assert_int_equal(atomic_file_write(AT_FDCWD, path, "x", 1, NULL), -1);
	assert_int_equal(errno, ENOENT);

	// NAME is a non-empty directory: the rename fails, the temporary file
	// is removed and what was there stays.
	snprintf(sub, sizeof(sub), "%s/taken", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/taken/keep", dir);
	assert_int_equal(atomic_file_write(AT_FDCWD, path, "kept", 4, NULL), 0);
	assert_int_equal(atomic_file_write(AT_FDCWD, sub, "new", 3, NULL), -1);
	assert_true(errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST);
	snprintf(path, sizeof(path), "%s/taken.tmp", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/taken/keep", dir);
	assert_int_equal(slurp(path, text, sizeof(text)), 4);
	assert_string_equal(text, "kept");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_and_replace_by_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_to_a_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_keeps_the_old_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
