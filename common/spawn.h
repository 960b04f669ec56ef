// SPDX-License-Identifier: Apache-2.0
//
// Child processes: fork + execve of a command that the caller describes
// completely beforehand (argv, environment, working directory, user to
// become, what to write when exec fails), so that the child, which may be
// forked from a process with other threads, calls only async-signal-safe
// functions until execve.  Three ways to run one: spawn_fork (the pid is
// the caller's to wait for), spawn_run (blocking, output collected: for
// code that runs before the event loop), and spawn_start (on a libevent
// loop: input fed through a non-blocking pipe, the first line of stderr
// kept, a timeout that kills the child's process group, reaped from
// SIGCHLD with a poll as a safety net).  Children are never run through a
// shell unless argv says so.
#ifndef VANTAGE_SPAWN_H
#define VANTAGE_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

#include "buf.h"

// All borrowed, and read before spawn_* returns.
struct spawn_cmd {
	char *const *argv; // argv[0] is a path: no PATH search (see spawn_find_program)
	char *const *envp; // NULL: our own environment
	// Working directory; if it cannot be entered, "/".  NULL: ours.
	const char *dir;
	// Its own process group, so that a kill reaches whatever it started.
	bool own_group;
	// Become uid/gid with these supplementary groups for good (we are
	// root).  The child fails rather than run with uid 0 still in reach.
	bool drop;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t ngroups;
	// Written to the child's stderr, each followed by a newline, when it
	// cannot switch users or cannot exec; the child then exits with 127.
	// NULL: a generic line.  With exec_error_errno the exec line ends in
	// ": errno N" (strerror is not async-signal-safe).
	const char *drop_error;
	const char *exec_error;
	bool exec_error_errno;
};

// Forks and execs cmd with the given descriptors as its stdin, stdout and
// stderr (-1: /dev/null); every other descriptor is closed in the child.
// Returns the pid, which the caller must wait for, or -1 with errno set.
pid_t spawn_fork(const struct spawn_cmd *cmd, int in_fd, int out_fd, int err_fd);

// In a child of our own fork that does not exec: becomes cmd's uid, gid
// and groups for good (async-signal-safe).  Returns 0, or -1 if that did
// not happen or uid 0 could be regained.
int spawn_drop(const struct spawn_cmd *cmd);

// Runs cmd with stdin from /dev/null, appends what it writes to stdout and
// stderr to out (at most max bytes kept; the rest is read and dropped) and
// stores its wait status in *status.  Blocks until it exits.  Returns 0, or
// -1 with err set if it could not be run or waited for.
int spawn_run(const struct spawn_cmd *cmd, struct buf *out, size_t max, int *status, char *err,
    size_t errlen);

// The owned absolute path of the first executable "name" in search_path
// (colon-separated, as PATH), or NULL.  A name with a slash is returned as
// it is.  Done before fork because execvp's search is not async-signal-safe.
char *spawn_find_program(const char *name, const char *search_path);

// --- children on the event loop ---

struct spawn;

#define SPAWN_LINE_MAX 256

struct spawn_result {
	int wait_status; // as from waitpid; meaningful unless lost
	bool timed_out;  // killed (with its group) after timeout_ms
	bool lost;       // waitpid failed: someone else reaped it
	pid_t pid;
	// The first line the child wrote to stderr, without the newline; raw
	// bytes, NUL-terminated, at most SPAWN_LINE_MAX - 1 of them.
	char stderr_line[SPAWN_LINE_MAX];
	size_t stderr_len;
};

// Runs once, from the loop, after the child has exited and been reaped;
// the spawn is already freed then, and r is valid during the call only.
typedef void (*spawn_done_cb)(const struct spawn_result *r, void *arg);

// Starts cmd with input (copied) on its stdin, stdout to /dev/null and
// stderr read for its first line; the process must ignore SIGPIPE, so
// that a child which exits without reading cannot take it down.  A child
// still running after timeout_ms is killed with its process group (give
// it own_group).  Returns a handle that is valid until cb runs (or until
// spawn_abandon), or NULL with err set (cb never runs then).
struct spawn *spawn_start(struct event_base *base, const struct spawn_cmd *cmd, const char *input,
    size_t input_len, uint32_t timeout_ms, spawn_done_cb cb, void *arg, char *err, size_t errlen);

// Kills the child (and its group), waits for it (moments after SIGKILL) and
// frees s without calling back; accepts NULL.
void spawn_abandon(struct spawn *s);

#endif
