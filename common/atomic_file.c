// SPDX-License-Identifier: Apache-2.0
//
// Write-temp, fsync, rename, fsync-directory; see atomic_file.h.
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
atomic_file_sync_dir(int dir_fd, const char *name)
{
	char dir[4096];
	const char *slash;
	int fd, rc, saved;

	if (dir_fd != AT_FDCWD)
		return fsync(dir_fd);
	slash = strrchr(name, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == name)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - name) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - name), name);
	else {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
atomic_file_write(int dir_fd, const char *name, const void *data, size_t len,
    const struct atomic_file_opts *opts)
{
	char tmp[4096];
	const char *p = data;
	mode_t mode = opts != NULL && opts->mode != 0 ? opts->mode : 0600;
	int fd, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (opts != NULL && opts->chown && fchown(fd, opts->uid, opts->gid) < 0)
		goto fail;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dir_fd, tmp, dir_fd, name) < 0)
		goto fail;
	return atomic_file_sync_dir(dir_fd, name);
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlinkat(dir_fd, tmp, 0);
	errno = saved;
	return -1;
}
