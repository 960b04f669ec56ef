// SPDX-License-Identifier: Apache-2.0
//
// Shared by the unit tests that start a throwaway PostgreSQL cluster with
// pgembed (test_pgembed.c, test_store.c): on a signal that skips atexit
// (a runner's timeout, ^C), ask that cluster's postmaster for a fast
// shutdown so no server outlives the test.  Async-signal-safe only.
#ifndef VANTAGE_PGTEST_H
#define VANTAGE_PGTEST_H

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

// Sends SIGINT to the postmaster of STATE_DIR/pg, then dies of sig.
static void
pgtest_die_on_signal(const char *state_dir, int sig)
{
	static const char suffix[] = "/pg/postmaster.pid";
	char path[4096], text[32];
	size_t dir_len = strlen(state_dir);
	ssize_t n = -1;
	long pid = 0;
	int fd;

	if (dir_len + sizeof(suffix) <= sizeof(path)) {
		memcpy(path, state_dir, dir_len);
		memcpy(path + dir_len, suffix, sizeof(suffix));
		fd = open(path, O_RDONLY);
		if (fd != -1) {
			n = read(fd, text, sizeof(text));
			close(fd);
		}
	}
	for (ssize_t i = 0; i < n && text[i] >= '0' && text[i] <= '9'; i++)
		pid = pid * 10 + (text[i] - '0');
	if (pid > 0)
		kill((pid_t)pid, SIGINT);
	signal(sig, SIG_DFL);
	raise(sig);
}

#endif
