// SPDX-License-Identifier: Apache-2.0
//
// Child processes (see spawn.h).  Everything a child needs -- argv, envp,
// descriptors, the user to become, its error messages -- exists before
// fork: between fork and execve the child is a copy of a process whose
// other threads may hold the malloc, stdio or locale locks forever, so it
// calls only async-signal-safe functions (sigaction, sigprocmask, setpgid,
// dup2, close, setgroups/setgid/setuid, chdir, execve, write, _exit).
// Nothing here blocks the loop except spawn_run, which says so; children
// on the loop are fed through non-blocking pipes and reaped from SIGCHLD,
// each by its own pid, so children of other modules are left alone.
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"

// A SIGCHLD coalesced with another, or delivered while libevent was busy,
// must not leave a child unreaped: each is also looked at this often.
#define SPAWN_POLL_INTERVAL_S 1

extern char **environ;

// --- in the child: async-signal-safe calls only ---

static void
spawn_child_write(const char *s)
{
	(void)!write(STDERR_FILENO, s, strlen(s));
}

// ": errno 13": strerror may translate, lock and allocate.
static void
spawn_child_write_errno(int err)
{
	char digits[16];
	size_t n = sizeof(digits);
	unsigned v = err < 0 ? 0u : (unsigned)err;

	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n > 0);
	spawn_child_write(": errno ");
	(void)!write(STDERR_FILENO, digits + n, sizeof(digits) - n);
}

// Group list first, while we still may change it; that uid 0 cannot be
// regained guards against a setuid that silently did nothing.
int
spawn_drop(const struct spawn_cmd *cmd)
{
	if (setgroups(cmd->ngroups, cmd->groups) == -1 || setgid(cmd->gid) == -1 ||
	    setuid(cmd->uid) == -1)
		return -1;
	if (setuid(0) != -1)
		return -1;
	return 0;
}

noreturn static void
spawn_child(const struct spawn_cmd *cmd, char *const *envp, int in_fd, int out_fd, int err_fd)
{
	struct sigaction dfl;
	sigset_t none;
	int exec_errno;

	if (cmd->own_group)
		(void)setpgid(0, 0);
	// An ignored SIGPIPE (ours) would be inherited across exec.
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	(void)sigaction(SIGPIPE, &dfl, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in_fd, STDIN_FILENO) == -1 || dup2(out_fd, STDOUT_FILENO) == -1 ||
	    dup2(err_fd, STDERR_FILENO) == -1)
		_exit(127);
	// Database, ZeroMQ and HTTP sockets are not the child's business, and
	// a server that outlives us must not hold them.
	if (close_range(3, ~0U, 0) == -1) {
		for (int fd = 3; fd < 1024; fd++)
			(void)close(fd);
	}
	if (cmd->drop && spawn_drop(cmd) == -1) {
		spawn_child_write(
		    cmd->drop_error != NULL ? cmd->drop_error : "could not switch users");
		spawn_child_write("\n");
		_exit(127);
	}
	if (cmd->dir != NULL && chdir(cmd->dir) == -1)
		(void)!chdir("/");
	execve(cmd->argv[0], cmd->argv, envp);
	exec_errno = errno;
	spawn_child_write(cmd->exec_error != NULL ? cmd->exec_error : "could not execute");
	if (cmd->exec_error_errno)
		spawn_child_write_errno(exec_errno);
	spawn_child_write("\n");
	_exit(127);
}

// --- in the parent ---

pid_t
spawn_fork(const struct spawn_cmd *cmd, int in_fd, int out_fd, int err_fd)
{
	char *const *envp = cmd->envp != NULL ? cmd->envp : environ;
	int devnull, saved;
	pid_t pid;

	// Below 3 a dup2 could overwrite a descriptor still to be moved.
	if ((in_fd >= 0 && in_fd < 3) || (out_fd >= 0 && out_fd < 3) ||
	    (err_fd >= 0 && err_fd < 3)) {
		errno = EINVAL;
		return -1;
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull == -1)
		return -1;
	pid = fork();
	if (pid == 0)
		spawn_child(cmd, envp, in_fd >= 0 ? in_fd : devnull, out_fd >= 0 ? out_fd : devnull,
		    err_fd >= 0 ? err_fd : devnull);
	saved = errno;
	// Also here: a kill right after fork must find the group.
	if (pid > 0 && cmd->own_group)
		(void)setpgid(pid, pid);
	close(devnull);
	errno = saved;
	return pid;
}

int
spawn_run(const struct spawn_cmd *cmd, struct buf *out, size_t max, int *status, char *err,
    size_t errlen)
{
	char chunk[4096];
	size_t kept = 0;
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "could not create a pipe for \"%s\": %s", cmd->argv[0],
		    strerror(errno));
		return -1;
	}
	pid = spawn_fork(cmd, -1, fds[1], fds[1]);
	if (pid == -1) {
		snprintf(err, errlen, "could not fork for \"%s\": %s", cmd->argv[0],
		    strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	close(fds[1]);
	for (;;) {
		ssize_t n = read(fds[0], chunk, sizeof(chunk));

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (kept < max) {
			size_t take = (size_t)n < max - kept ? (size_t)n : max - kept;

			buf_append(out, chunk, take);
			kept += take;
		}
	}
	close(fds[0]);
	while (waitpid(pid, status, 0) == -1) {
		if (errno != EINTR) {
			snprintf(err, errlen, "could not wait for \"%s\": %s", cmd->argv[0],
			    strerror(errno));
			return -1;
		}
	}
	buf_cstr(out);
	return 0;
}

char *
spawn_find_program(const char *name, const char *search_path)
{
	const char *dir = search_path, *end;
	struct buf path;
	char *found = NULL;

	if (strchr(name, '/') != NULL)
		return xstrdup(name);
	if (search_path == NULL)
		return NULL;
	buf_init(&path);
	for (; found == NULL; dir = end + 1) {
		end = strchr(dir, ':');
		if (end == NULL)
			end = dir + strlen(dir);
		buf_reset(&path);
		// An empty entry means the current directory, as for execvp.
		if (end > dir)
			buf_append(&path, dir, (size_t)(end - dir));
		else
			buf_putc(&path, '.');
		buf_printf(&path, "/%s", name);
		if (access(buf_cstr(&path), X_OK) == 0)
			found = xstrdup(buf_cstr(&path));
		if (*end == '\0')
			break;
	}
	buf_free(&path);
	return found;
}

// --- children on the event loop ---

struct spawn {
	pid_t pid;
	int stdin_fd, stderr_fd;
	struct event *stdin_ev, *stderr_ev, *timeout, *sigchld, *poll;
	char *input;
	size_t input_len, input_sent;
	bool line_done;
	struct spawn_result result;
	spawn_done_cb cb;
	void *arg;
};

static void
spawn_free(struct spawn *s)
{
	struct event *events[] = { s->stdin_ev, s->stderr_ev, s->timeout, s->sigchld, s->poll };

	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		if (events[i] != NULL)
			event_free(events[i]);
	if (s->stdin_fd >= 0)
		close(s->stdin_fd);
	if (s->stderr_fd >= 0)
		close(s->stderr_fd);
	free(s->input);
	free(s);
}

static void
spawn_close_stdin(struct spawn *s)
{
	if (s->stdin_ev != NULL) {
		event_free(s->stdin_ev);
		s->stdin_ev = NULL;
	}
	if (s->stdin_fd >= 0) {
		close(s->stdin_fd);
		s->stdin_fd = -1;
	}
}

// Keeps the first line of stderr: the reason a failing command gives.
// Returns false at EOF or error.
static bool
spawn_read_stderr(struct spawn *s)
{
	struct spawn_result *r = &s->result;
	char chunk[1024];
	ssize_t n;

	for (;;) {
		n = read(s->stderr_fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		for (ssize_t i = 0; i < n && !s->line_done; i++) {
			if (chunk[i] == '\n' || r->stderr_len + 1 >= sizeof(r->stderr_line))
				s->line_done = true;
			else
				r->stderr_line[r->stderr_len++] = chunk[i];
		}
	}
}

static void
spawn_on_stderr(evutil_socket_t fd, short what, void *arg)
{
	struct spawn *s = arg;

	if (spawn_read_stderr(s))
		return;
	event_free(s->stderr_ev);
	s->stderr_ev = NULL;
	close(s->stderr_fd);
	s->stderr_fd = -1;
}

// The pipe holds 64 KiB; a larger input, or a child slow to read, waits
// for the next writable event instead of blocking the loop.
static void
spawn_on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct spawn *s = arg;
	ssize_t n;

	while (s->input_sent < s->input_len) {
		n = write(s->stdin_fd, s->input + s->input_sent, s->input_len - s->input_sent);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0)
			break; // EPIPE: it does not read; its exit status tells
		s->input_sent += (size_t)n;
	}
	spawn_close_stdin(s);
}

static void
spawn_kill(pid_t pid)
{
	// The group first: a shell script's own children must not outlive it.
	if (kill(-pid, SIGKILL) == -1)
		kill(pid, SIGKILL);
}

static void
spawn_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct spawn *s = arg;

	s->result.timed_out = true;
	spawn_kill(s->pid);
	// Reaped from SIGCHLD like any exit.
}

// Collects the child if it has exited, then frees s and reports.
static void
spawn_reap(struct spawn *s)
{
	struct spawn_result result;
	spawn_done_cb cb = s->cb;
	void *arg = s->arg;
	int status = 0;
	pid_t r;

	r = waitpid(s->pid, &status, WNOHANG);
	if (r == 0 || (r == -1 && errno == EINTR))
		return;
	if (s->stderr_fd >= 0)
		(void)spawn_read_stderr(s);
	s->result.stderr_line[s->result.stderr_len] = '\0';
	s->result.wait_status = status;
	s->result.lost = r == -1;
	result = s->result;
	spawn_free(s);
	cb(&result, arg);
}

static void
spawn_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	spawn_reap(arg);
}

static void
spawn_on_poll(evutil_socket_t fd, short what, void *arg)
{
	spawn_reap(arg);
}

struct spawn *
spawn_start(struct event_base *base, const struct spawn_cmd *cmd, const char *input,
    size_t input_len, uint32_t timeout_ms, spawn_done_cb cb, void *arg, char *err, size_t errlen)
{
	struct spawn *s = xcalloc(1, sizeof(*s));
	struct timeval every = { SPAWN_POLL_INTERVAL_S, 0 };
	struct timeval tv = clock_tv((int64_t)timeout_ms * 1000);
	int in[2] = { -1, -1 }, errp[2] = { -1, -1 };

	s->cb = cb;
	s->arg = arg;
	s->stdin_fd = s->stderr_fd = -1;
	// Watching before the fork: a child that exits at once is not missed.
	s->sigchld = evsignal_new(base, SIGCHLD, spawn_on_sigchld, s);
	s->poll = event_new(base, -1, EV_PERSIST, spawn_on_poll, s);
	s->timeout = evtimer_new(base, spawn_on_timeout, s);
	if (s->sigchld == NULL || s->poll == NULL || s->timeout == NULL)
		fatalx("could not create the events to watch a child process");
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(errp, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "could not create a pipe: %s", strerror(errno));
		goto fail;
	}
	event_add(s->sigchld, NULL);
	s->pid = spawn_fork(cmd, in[0], -1, errp[1]);
	if (s->pid == -1) {
		snprintf(err, errlen, "could not fork: %s", strerror(errno));
		goto fail;
	}
	s->result.pid = s->pid;
	close(in[0]);
	close(errp[1]);
	s->stdin_fd = in[1];
	s->stderr_fd = errp[0];
	if (fcntl(s->stdin_fd, F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(s->stderr_fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("could not make a pipe to a child process non-blocking");
	s->input = xmalloc(input_len + 1);
	memcpy(s->input, input, input_len);
	s->input_len = input_len;
	s->stdin_ev = event_new(base, s->stdin_fd, EV_WRITE | EV_PERSIST, spawn_on_stdin, s);
	s->stderr_ev = event_new(base, s->stderr_fd, EV_READ | EV_PERSIST, spawn_on_stderr, s);
	if (s->stdin_ev == NULL || s->stderr_ev == NULL)
		fatalx("could not create the events to watch a child process");
	event_add(s->stdin_ev, NULL);
	event_add(s->stderr_ev, NULL);
	event_add(s->poll, &every);
	evtimer_add(s->timeout, &tv);
	return s;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	spawn_free(s);
	return NULL;
}

void
spawn_abandon(struct spawn *s)
{
	if (s == NULL)
		return;
	spawn_kill(s->pid);
	while (waitpid(s->pid, NULL, 0) == -1 && errno == EINTR)
		;
	spawn_free(s);
}
