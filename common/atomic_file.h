// SPDX-License-Identifier: Apache-2.0
//
// Replacing a small file so that a crash leaves either the old contents or
// the new, never a torn mix: write NAME.tmp, fsync it, rename it over NAME,
// fsync the directory.  The agent's spool epoch and cached Config and the
// embedded PostgreSQL's settings file are written this way.
#ifndef VANTAGE_ATOMIC_FILE_H
#define VANTAGE_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct atomic_file_opts {
	mode_t mode; // of NAME.tmp when it is created (0600 if 0)
	bool chown;  // give the file to uid:gid before writing it
	uid_t uid;
	gid_t gid;
};

// NAME is relative to dir_fd, or a path when dir_fd is AT_FDCWD (then its
// directory is opened to be fsync'd).  opts may be NULL.  Returns 0, or -1
// with errno set and NAME unchanged (NAME.tmp removed).
int atomic_file_write(int dir_fd, const char *name, const void *data, size_t len,
    const struct atomic_file_opts *opts);

#endif
