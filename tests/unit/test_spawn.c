// SPDX-License-Identifier: Apache-2.0
//
// Unit tests for common/spawn, against real /bin/sh children: exit status
// and captured output of spawn_run (with its cap), the line a child writes
// when exec fails, the environment and working directory it gets, that it
// inherits no descriptor and no ignored SIGPIPE, the user it becomes (as
// root; skipped otherwise), its own process group,
// and on a libevent loop: stdin delivered (also more than a pipe holds),
// the first stderr line, a timeout that kills the whole process group,
// and spawn_abandon.  Every loop runs under a deadline, so a lost callback
// fails in seconds instead of hanging.
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "buf.h"
#include "clock.h"
#include "spawn.h"
#include "xmalloc.h"

#define DEADLINE_MS 20000

// A /bin/sh -c SCRIPT child (ARG as $0), to be given to spawn_*.
struct sh {
	char *argv[5];
	struct spawn_cmd cmd;
};

static void
sh_init(struct sh *sh, const char *script, const char *arg)
{
	memset(sh, 0, sizeof(*sh));
	sh->argv[0] = "/bin/sh";
	sh->argv[1] = "-c";
	sh->argv[2] = (char *)script;
	sh->argv[3] = (char *)(arg != NULL ? arg : "sh");
	sh->cmd.argv = sh->argv;
}

// spawn_run, which must work: returns the wait status, output in out.
static int
run(const struct spawn_cmd *cmd, struct buf *out, size_t max)
{
	char err[256];
	int status = -1;

	buf_reset(out);
	if (spawn_run(cmd, out, max, &status, err, sizeof(err)) != 0)
		fail_msg("spawn_run: %s", err);
	buf_cstr(out);
	return status;
}

static void
test_run_status_and_output(void **state)
{
	struct sh sh;
	struct buf out;
	int status;

	(void)state;
	buf_init(&out);
	sh_init(&sh, "echo out; echo err >&2; exit 3", NULL);
	status = run(&sh.cmd, &out, 4096);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	assert_string_equal((const char *)out.data, "out\nerr\n");

	sh_init(&sh, "kill -TERM $$", NULL);
	status = run(&sh.cmd, &out, 4096);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	buf_free(&out);
}

// Past the cap output is read and dropped: the child is never left
// blocked on a full pipe.
static void
test_run_output_cap(void **state)
{
	struct sh sh;
	struct buf out;
	int status;

	(void)state;
	buf_init(&out);
	sh_init(&sh, "i=0; while [ $i -lt 2000 ]; do echo 0123456789abcdef; i=$((i+1)); done",
	    NULL);
	status = run(&sh.cmd, &out, 100);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(out.len, 100);
	assert_memory_equal(out.data, "0123456789abcdef\n", 17);
	buf_free(&out);
}

static void
test_run_exec_error(void **state)
{
	char *argv[] = { "/nonexistent/program", NULL };
	struct spawn_cmd cmd = { .argv = argv, .exec_error = "could not execute \"x\"" };
	struct buf out;
	int status;

	(void)state;
	buf_init(&out);
	status = run(&cmd, &out, 4096);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 127);
	assert_string_equal((const char *)out.data, "could not execute \"x\"\n");

	cmd.exec_error_errno = true;
	status = run(&cmd, &out, 4096);
	assert_int_equal(WEXITSTATUS(status), 127);
	assert_string_equal((const char *)out.data, "could not execute \"x\": errno 2\n");

	cmd.exec_error = NULL;
	cmd.exec_error_errno = false;
	(void)run(&cmd, &out, 4096);
	assert_string_equal((const char *)out.data, "could not execute\n");
	buf_free(&out);
}

// Only the environment given, in the directory given ("/" if it cannot be
// entered).
static void
test_run_env_and_dir(void **state)
{
	char *envp[] = { "VANTAGE_TEST=yes", "PATH=/usr/bin:/bin", NULL };
	struct sh sh;
	struct buf out;

	(void)state;
	buf_init(&out);
	sh_init(&sh, "echo \"$VANTAGE_TEST ${HOME:-nohome} $(pwd)\"", NULL);
	sh.cmd.envp = envp;
	sh.cmd.dir = "/tmp";
	(void)run(&sh.cmd, &out, 4096);
	assert_string_equal((const char *)out.data, "yes nohome /tmp\n");
	sh.cmd.dir = "/nonexistent/dir";
	(void)run(&sh.cmd, &out, 4096);
	assert_string_equal((const char *)out.data, "yes nohome /\n");
	buf_free(&out);
}

// No descriptor of ours reaches the child, CLOEXEC or not, and a SIGPIPE
// we ignore is not ignored there.
static void
test_run_clean_inheritance(void **state)
{
	int fds[2];
	char script[256];
	struct sh sh;
	struct buf out;
	int status;

	(void)state;
	buf_init(&out);
	assert_int_equal(pipe(fds), 0);
	snprintf(script, sizeof(script),
	    "[ -e /proc/$$/fd/%d ] && echo inherited; "
	    "mask=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status); "
	    "[ $(( 0x$mask & 0x1000 )) -ne 0 ] && echo sigpipe-ignored; exit 0",
	    fds[1]);
	sh_init(&sh, script, NULL);
	status = run(&sh.cmd, &out, 4096);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_string_equal((const char *)out.data, "");
	close(fds[0]);
	close(fds[1]);
	buf_free(&out);
}

// As root: the child runs as the user given, for good, with its groups.
static void
test_run_drop(void **state)
{
	const struct passwd *pw;
	gid_t groups[1];
	struct sh sh;
	struct buf out;
	char want[128];
	int status;

	(void)state;
	if (geteuid() != 0)
		skip();
	pw = getpwnam("nobody");
	if (pw == NULL || pw->pw_uid == 0)
		skip();
	groups[0] = pw->pw_gid;
	buf_init(&out);
	sh_init(&sh, "echo $(id -u) $(id -g) $(id -G)", NULL);
	sh.cmd.drop = true;
	sh.cmd.uid = pw->pw_uid;
	sh.cmd.gid = pw->pw_gid;
	sh.cmd.groups = groups;
	sh.cmd.ngroups = 1;
	status = run(&sh.cmd, &out, 4096);
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(want, sizeof(want), "%u %u %u\n", (unsigned)pw->pw_uid, (unsigned)pw->pw_gid,
	    (unsigned)pw->pw_gid);
	assert_string_equal((const char *)out.data, want);
	buf_free(&out);
}

static void
test_fork_own_group(void **state)
{
	int fds[2];
	struct sh sh;
	char got[64] = { 0 }, want[32];
	ssize_t n, len = 0;
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	sh_init(&sh, "cut -d' ' -f5 /proc/$$/stat", NULL);
	sh.cmd.own_group = true;
	pid = spawn_fork(&sh.cmd, -1, fds[1], -1);
	assert_true(pid > 0);
	close(fds[1]);
	while ((n = read(fds[0], got + len, sizeof(got) - 1 - (size_t)len)) > 0)
		len += n;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(want, sizeof(want), "%ld\n", (long)pid);
	assert_string_equal(got, want);

	// Descriptors 0-2 are where the child's go: refused, not clobbered.
	errno = 0;
	assert_int_equal(spawn_fork(&sh.cmd, 1, -1, -1), -1);
	assert_int_equal(errno, EINVAL);
}

static void
test_find_program(void **state)
{
	char *path;

	(void)state;
	path = spawn_find_program("sh", "/nonexistent:/bin:/usr/bin");
	assert_string_equal(path, "/bin/sh");
	free(path);
	path = spawn_find_program("/some/where/prog", "/bin");
	assert_string_equal(path, "/some/where/prog");
	free(path);
	assert_null(spawn_find_program("vantage-no-such-program", "/bin:/usr/bin"));
	assert_null(spawn_find_program("sh", NULL));
}

// --- children on a loop ---

struct fix {
	struct event_base *base;
	struct event *deadline;
	bool timed_out;
	char dir[64];
};

struct outcome {
	int done;
	struct spawn_result r;
};

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct fix *f = arg;

	f->timed_out = true;
	event_base_loopbreak(f->base);
}

static void
on_done(const struct spawn_result *r, void *arg)
{
	struct outcome *o = arg;

	o->done++;
	o->r = *r;
}

static void
run_until(struct fix *f, struct outcome *o)
{
	while (o->done == 0) {
		if (f->timed_out)
			fail_msg("deadline passed before the child was reaped");
		event_base_loop(f->base, EVLOOP_ONCE);
	}
	assert_int_equal(o->done, 1);
}

static int
setup(void **state)
{
	struct fix *f = xcalloc(1, sizeof(*f));
	struct timeval tv = clock_tv(DEADLINE_MS * 1000);

	f->base = event_base_new();
	assert_non_null(f->base);
	f->deadline = evtimer_new(f->base, on_deadline, f);
	evtimer_add(f->deadline, &tv);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vantage-test-spawn-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	char cmd[128];

	event_free(f->deadline);
	event_base_free(f->base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *data;
	long size;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	rewind(fp);
	data = xmalloc((size_t)size + 1);
	assert_int_equal(fread(data, 1, (size_t)size, fp), (size_t)size);
	data[size] = '\0';
	fclose(fp);
	*len = (size_t)size;
	return data;
}

static struct spawn *
start(struct fix *f, const struct spawn_cmd *cmd, const char *input, size_t len,
    uint32_t timeout_ms, struct outcome *o)
{
	char err[256];
	struct spawn *s = spawn_start(f->base, cmd, input, len, timeout_ms, on_done, o, err,
	    sizeof(err));

	if (s == NULL)
		fail_msg("spawn_start: %s", err);
	return s;
}

// All of stdin arrives, also 1 MiB to a child that reads late: the write
// waits for the reader instead of blocking the loop.
static void
test_start_stdin(void **state)
{
	struct fix *f = *state;
	size_t big = 1024 * 1024, len;
	char path[128], *input = xmalloc(big), *got;
	struct outcome o = { 0 };
	struct sh sh;

	for (size_t i = 0; i < big; i++)
		input[i] = (char)('a' + i % 26);
	snprintf(path, sizeof(path), "%s/stdin", f->dir);
	sh_init(&sh, "sleep 0.2; cat > \"$0\"", path);
	(void)start(f, &sh.cmd, input, big, 10000, &o);
	run_until(f, &o);
	assert_false(o.r.timed_out);
	assert_false(o.r.lost);
	assert_true(WIFEXITED(o.r.wait_status));
	assert_int_equal(WEXITSTATUS(o.r.wait_status), 0);
	got = slurp(path, &len);
	assert_int_equal(len, big);
	assert_memory_equal(got, input, big);
	free(got);
	free(input);
}

static void
test_start_status_and_stderr(void **state)
{
	struct fix *f = *state;
	struct outcome o = { 0 };
	struct sh sh;

	sh_init(&sh, "cat >/dev/null; echo 'first line' >&2; echo second >&2; exit 4", NULL);
	(void)start(f, &sh.cmd, "x", 1, 10000, &o);
	run_until(f, &o);
	assert_true(WIFEXITED(o.r.wait_status));
	assert_int_equal(WEXITSTATUS(o.r.wait_status), 4);
	assert_string_equal(o.r.stderr_line, "first line");
	assert_int_equal(o.r.stderr_len, strlen("first line"));
	assert_true(o.r.pid > 0);

	// A child that never reads its stdin still ends by its exit status.
	memset(&o, 0, sizeof(o));
	sh_init(&sh, "exit 0", NULL);
	{
		size_t big = 256 * 1024;
		char *input = xcalloc(1, big);

		(void)start(f, &sh.cmd, input, big, 10000, &o);
		run_until(f, &o);
		free(input);
	}
	assert_int_equal(WEXITSTATUS(o.r.wait_status), 0);
	assert_string_equal(o.r.stderr_line, "");
}

static bool
process_gone(pid_t pid)
{
	char path[64], stat[256];
	FILE *fp;
	bool gone;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return true;
	// A zombie waiting for init is dead enough.
	gone = fgets(stat, sizeof(stat), fp) != NULL && strstr(stat, ") Z ") != NULL;
	fclose(fp);
	return gone;
}

// The timeout kills the process group: the script's own child too.
static void
test_start_timeout_kills_group(void **state)
{
	struct fix *f = *state;
	char path[128], *text;
	struct outcome o = { 0 };
	int64_t start_us = clock_mono_us();
	struct sh sh;
	long grandchild;
	size_t len;

	snprintf(path, sizeof(path), "%s/pid", f->dir);
	sh_init(&sh, "sleep 60 & echo $! > \"$0\"; wait", path);
	sh.cmd.own_group = true;
	(void)start(f, &sh.cmd, "", 0, 500, &o);
	run_until(f, &o);
	assert_true(o.r.timed_out);
	assert_true(WIFSIGNALED(o.r.wait_status));
	assert_int_equal(WTERMSIG(o.r.wait_status), SIGKILL);
	assert_true(clock_mono_us() - start_us >= 450 * 1000);
	assert_true(clock_mono_us() - start_us < 5 * 1000000);
	text = slurp(path, &len);
	grandchild = strtol(text, NULL, 10);
	free(text);
	assert_true(grandchild > 0);
	for (int i = 0; i < 50 && !process_gone((pid_t)grandchild); i++)
		usleep(20000);
	assert_true(process_gone((pid_t)grandchild));
}

// Abandoned: killed and reaped at once, and no callback.
static void
test_abandon(void **state)
{
	struct fix *f = *state;
	struct outcome o = { 0 };
	struct spawn *s;
	struct sh sh;

	sh_init(&sh, "sleep 60", NULL);
	sh.cmd.own_group = true;
	s = start(f, &sh.cmd, "", 0, 60000, &o);
	for (int i = 0; i < 5; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	spawn_abandon(s);
	spawn_abandon(NULL);
	for (int i = 0; i < 5; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(o.done, 0);
	// Reaped: no child of ours is left, not even a zombie.
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_status_and_output),
		cmocka_unit_test(test_run_output_cap),
		cmocka_unit_test(test_run_exec_error),
		cmocka_unit_test(test_run_env_and_dir),
		cmocka_unit_test(test_run_clean_inheritance),
		cmocka_unit_test(test_run_drop),
		cmocka_unit_test(test_fork_own_group),
		cmocka_unit_test(test_find_program),
		cmocka_unit_test_setup_teardown(test_start_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_status_and_stderr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_timeout_kills_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandon, setup, teardown),
	};

	// As in the aggregator: a child that exits without reading its stdin
	// must not take the process down.
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
