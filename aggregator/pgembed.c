// SPDX-License-Identifier: Apache-2.0
//
// The aggregator's private PostgreSQL cluster (see pgembed.h): finds the
// server binaries, runs initdb once, rewrites vantage.conf (unix socket only,
// durable settings) at every start, starts the server with pg_ctl or adopts
// one left running by an aggregator that was killed, and creates the
// "vantage" database.  Children run through common/spawn (fork + execve)
// with a fixed environment, never through a shell, and as root they first
// drop to the unprivileged owner of the cluster, because postgres refuses to
// run as root and a root-owned cluster would be one bug away from a root
// shell.  What a child needs (argv, environment, user, messages) is built
// here before the fork, because the child may only make async-signal-safe
// calls: pgembed_supervise forks while other threads run.  This
// file never talks SQL: once the server answers, store_pg.c takes over.
// Runs before the event loop, while the process is still single-threaded,
// except pgembed_supervise: on the loop it only forks a pg_ctl that execs at
// once and reaps it later, never waiting.
#include "pgembed.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "spawn.h"
#include "xmalloc.h"

#define PGEMBED_PORT "5432"
#define PGEMBED_ROLE "vantage"
#define PGEMBED_DB "vantage"
#define PGEMBED_WAIT_S "60"
#define PGEMBED_WAIT_US (60 * 1000000LL)
// Enough for any initdb or pg_ctl chatter; the rest is dropped.
#define PGEMBED_OUTPUT_MAX (64 * 1024)
// Written after createdb succeeded, so a restart does not create it again.
#define PGEMBED_MARKER "vantage.dbcreated"
#define PGEMBED_SOCKET_NAME "/.s.PGSQL." PGEMBED_PORT
// Restarts of a server that died under us: 1 s doubling to 30 s apart.
#define PGEMBED_RESTART_MIN_S 1
#define PGEMBED_RESTART_MAX_S 30

struct pgembed {
	char *bindir;
	char *dir; // absolute data directory, also the socket directory
	char *log_path;
	char **envp;       // fixed environment of every child
	char *search_path; // its PATH, searched before fork
	bool running;      // started or adopted by us: stop it on failure
	bool drop;         // we are root: children run as run_user
	char *run_user;
	uid_t run_uid;
	gid_t run_gid;
	gid_t *groups;
	int ngroups;
	char *drop_error; // what a child that cannot become run_user says
	// Restarts by pgembed_supervise: the pg_ctl in flight and when the
	// next attempt may start.
	pid_t restart_pid;
	int64_t restart_at_mono;
	int restart_backoff_s;
	int64_t restart_started_mono;
};

static double
pgembed_seconds_since(int64_t start_us)
{
	return (double)(clock_mono_us() - start_us) / 1e6;
}

static char *
pgembed_path(const char *dir, const char *name)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%s/%s", dir, name);
	buf_cstr(&b);
	return (char *)b.data;
}

static bool
pgembed_exists(const char *dir, const char *name)
{
	char *path = pgembed_path(dir, name);
	bool found = access(path, F_OK) == 0;

	free(path);
	return found;
}

// PGPORT, PGDATA, PGHOST and friends in our own environment would silently
// redirect the server or the client tools, so children get only these.
static void
pgembed_make_env(struct pgembed *pg)
{
	const char *path = getenv("PATH");
	const char *tz = getenv("TZ");
	char **envp = xcalloc(5, sizeof(*envp));
	struct buf b;
	int n = 0;

	pg->search_path = xstrdup(
	    path != NULL && *path != '\0' ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	buf_init(&b);
	buf_printf(&b, "PATH=%s", pg->search_path);
	envp[n++] = xstrdup(buf_cstr(&b));
	buf_free(&b);
	// Untranslated messages: we search createdb's output for "already exists".
	envp[n++] = xstrdup("LC_ALL=C");
	envp[n++] = xstrdup("PGCONNECT_TIMEOUT=10");
	if (tz != NULL) {
		buf_init(&b);
		buf_printf(&b, "TZ=%s", tz);
		envp[n++] = xstrdup(buf_cstr(&b));
		buf_free(&b);
	}
	envp[n] = NULL;
	pg->envp = envp;
}

static void
pgembed_free(struct pgembed *pg)
{
	if (pg == NULL)
		return;
	if (pg->envp != NULL) {
		for (char **e = pg->envp; *e != NULL; e++)
			free(*e);
		free(pg->envp);
	}
	free(pg->search_path);
	free(pg->drop_error);
	free(pg->bindir);
	free(pg->dir);
	free(pg->log_path);
	free(pg->run_user);
	free(pg->groups);
	free(pg);
}

// A child of the cluster: as its owner when we are root, in the data
// directory (or "/" before there is one), with the fixed environment.
// Borrows pg, argv and exec_error.
static struct spawn_cmd
pgembed_cmd(const struct pgembed *pg, char *const argv[], const char *exec_error)
{
	return (struct spawn_cmd){
		.argv = argv,
		.envp = pg->envp,
		.dir = pg->dir != NULL ? pg->dir : "/",
		.drop = pg->drop,
		.uid = pg->run_uid,
		.gid = pg->run_gid,
		.groups = pg->groups,
		.ngroups = (size_t)pg->ngroups,
		.drop_error = pg->drop_error,
		.exec_error = exec_error,
		.exec_error_errno = true,
	};
}

// The line a child writes when it cannot exec program: owned.
static char *
pgembed_exec_error(const char *program)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "could not execute \"%s\"", program);
	buf_cstr(&b);
	return (char *)b.data;
}

// Runs argv[0] (as the cluster owner when we are root), collects its
// stdout and stderr into out and its wait status into *status.  Returns -1
// only if it could not be run at all.
static int
pgembed_run(const struct pgembed *pg, char *const argv[], struct buf *out, int *status)
{
	char *exec_error = pgembed_exec_error(argv[0]);
	struct spawn_cmd cmd = pgembed_cmd(pg, argv, exec_error);
	char err[512];
	int rc;

	rc = spawn_run(&cmd, out, PGEMBED_OUTPUT_MAX, status, err, sizeof(err));
	if (rc == -1)
		log_warnx("%s", err);
	free(exec_error);
	return rc;
}

static void
pgembed_describe_status(int status, char *out, size_t outlen)
{
	if (WIFEXITED(status))
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, outlen, "was terminated by signal %d: %s", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		snprintf(out, outlen, "stopped with wait status %d", status);
}

static const char *
pgembed_next_line(const char *p)
{
	p += strcspn(p, "\n");
	return *p == '\n' ? p + 1 : p;
}

// Logs the last max_lines non-empty lines of text, each prefixed by what
// (once: PostgreSQL programs prefix their errors with their own name).
static void
pgembed_show_lines(const char *what, const char *text, int max_lines)
{
	size_t what_len = strlen(what);
	const char *p;
	int total = 0, skip;

	for (p = text; *p != '\0'; p = pgembed_next_line(p))
		total += *p != '\n';
	skip = total > max_lines ? total - max_lines : 0;
	for (p = text; *p != '\0'; p = pgembed_next_line(p)) {
		const char *line = p;
		size_t len = strcspn(p, "\n");

		if (len > what_len + 2 && strncmp(line, what, what_len) == 0 &&
		    strncmp(line + what_len, ": ", 2) == 0) {
			line += what_len + 2;
			len -= what_len + 2;
		}
		if (len > 0 && skip-- <= 0)
			log_warnx("%s: %.*s", what, (int)len, line);
	}
}

// Keeps the output of initdb and pg_ctl next to the server's own messages.
static void
pgembed_log_append(const struct pgembed *pg, const struct buf *out)
{
	int fd;

	if (out->len == 0)
		return;
	fd = open(pg->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1) {
		log_warn("could not open \"%s\"", pg->log_path);
		return;
	}
	if (pg->drop && fchown(fd, pg->run_uid, pg->run_gid) == -1)
		log_warn("could not change owner of \"%s\"", pg->log_path);
	if (write(fd, out->data, out->len) != (ssize_t)out->len)
		log_warn("could not write to \"%s\"", pg->log_path);
	close(fd);
}

// The server's last words explain most start failures (lock file, port,
// shared memory, permissions), so show the tail of its log.
static void
pgembed_show_log_tail(const struct pgembed *pg)
{
	char tail[4096];
	const char *start = tail;
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(pg->log_path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(tail) - 1)
		(void)lseek(fd, st.st_size - (off_t)sizeof(tail) + 1, SEEK_SET);
	n = read(fd, tail, sizeof(tail) - 1);
	close(fd);
	if (n <= 0)
		return;
	tail[n] = '\0';
	if (st.st_size > (off_t)sizeof(tail) - 1 && strchr(tail, '\n') != NULL)
		start = strchr(tail, '\n') + 1;
	pgembed_show_lines("server log", start, 20);
}

// Runs a PostgreSQL program; on failure logs "could not WHAT", its exit
// status and its output.  Output goes to the cluster log when keep_output.
// Returns 0, or -1 with the output left in out for the caller to inspect.
static int
pgembed_run_step(const struct pgembed *pg, const char *what, char *const argv[], struct buf *out,
    bool keep_output)
{
	char how[128];
	int status;

	buf_reset(out);
	if (pgembed_run(pg, argv, out, &status) == -1)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (keep_output)
			pgembed_log_append(pg, out);
		return 0;
	}
	pgembed_describe_status(status, how, sizeof(how));
	log_warnx("could not %s: \"%s\" %s", what, argv[0], how);
	return -1;
}

static bool
pgembed_has_server(const char *bindir)
{
	static const char *const progs[] = { "initdb", "pg_ctl", "postgres", "createdb" };

	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		char *path = pgembed_path(bindir, progs[i]);
		bool ok = access(path, X_OK) == 0;

		free(path);
		if (!ok)
			return false;
	}
	return true;
}

// pg_config --bindir names the installation the build used; Debian's
// libpq-dev ships a pg_config that may point at client-only binaries, so
// fall back to the newest server under /usr/lib/postgresql.
static char *
pgembed_find_bindir(const struct pgembed *pg)
{
	char *pg_config = spawn_find_program("pg_config", pg->search_path);
	char *const argv[] = { pg_config, "--bindir", NULL };
	struct buf out;
	glob_t gl;
	char *best = NULL;
	long best_version = -1;
	int status;

	buf_init(&out);
	if (pg_config == NULL)
		log_debug("no \"pg_config\" in \"%s\"", pg->search_path);
	else if (pgembed_run(pg, argv, &out, &status) == 0 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0 && out.len > 0) {
		char *line = xstrndup((const char *)out.data,
		    strcspn((const char *)out.data, "\n"));

		if (line[0] == '/' && pgembed_has_server(line)) {
			buf_free(&out);
			free(pg_config);
			return line;
		}
		log_debug("\"pg_config --bindir\" names \"%s\", which has no server", line);
		free(line);
	}
	buf_free(&out);
	free(pg_config);

	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &gl) != 0) {
		log_warnx("could not find the PostgreSQL server programs");
		log_warnx("hint: install \"postgresql-15\" (make deps), or put the "
			  "pg_config of a server installation first in PATH");
		return NULL;
	}
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		const char *v = gl.gl_pathv[i] + strlen("/usr/lib/postgresql/");
		char *end;
		long version;
		char *dir;

		errno = 0;
		version = strtol(v, &end, 10);
		if (errno != 0 || end == v || (*end != '/' && *end != '.'))
			continue;
		dir = xstrndup(gl.gl_pathv[i], strlen(gl.gl_pathv[i]) - strlen("/initdb"));
		if (version > best_version && pgembed_has_server(dir)) {
			free(best);
			best = dir;
			best_version = version;
		} else {
			free(dir);
		}
	}
	globfree(&gl);
	if (best == NULL)
		log_warnx("could not find a complete PostgreSQL server installation "
			  "under \"/usr/lib/postgresql\"");
	return best;
}

static void
pgembed_set_user(struct pgembed *pg, const struct passwd *pw)
{
	struct buf msg;
	int n = 16;

	pg->run_user = xstrdup(pw->pw_name);
	// Written by a child that fails to become the user, which cannot
	// format it then.
	buf_init(&msg);
	buf_printf(&msg, "could not switch to user \"%s\"", pg->run_user);
	pg->drop_error = xstrdup(buf_cstr(&msg));
	buf_free(&msg);
	pg->run_uid = pw->pw_uid;
	pg->run_gid = pw->pw_gid;
	for (;;) {
		int want = n;

		pg->groups = xreallocarray(pg->groups, (size_t)n, sizeof(gid_t));
		if (getgrouplist(pw->pw_name, pw->pw_gid, pg->groups, &n) != -1)
			break;
		if (n <= want)
			n = want * 2;
	}
	pg->ngroups = n;
}

// As root the cluster needs an owner.  An existing cluster keeps the owner
// it has, so a later useradd of "vantage" does not orphan a cluster that
// started life as "postgres"; a new one goes to "vantage", else "postgres",
// else "nobody".
static int
pgembed_pick_user(struct pgembed *pg, const struct stat *dir_st)
{
	static const char *const candidates[] = { "vantage", "postgres", "nobody" };
	struct passwd *pw;

	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		pg->run_user = xstrdup(pw != NULL ? pw->pw_name : "(unknown)");
		return 0;
	}
	pg->drop = true;
	if (dir_st != NULL && dir_st->st_uid != 0) {
		pw = getpwuid(dir_st->st_uid);
		if (pw == NULL) {
			log_warnx("owner (uid %u) of \"%s\" has no user entry",
			    (unsigned)dir_st->st_uid, pg->dir);
			return -1;
		}
		pgembed_set_user(pg, pw);
		return 0;
	}
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		pw = getpwnam(candidates[i]);
		if (pw == NULL || pw->pw_uid == 0)
			continue;
		if (i > 0) {
			log_warnx("user \"vantage\" does not exist, running the "
				  "embedded database as \"%s\"",
			    candidates[i]);
			log_warnx("hint: run \"make deps\" as root to create it");
		}
		pgembed_set_user(pg, pw);
		return 0;
	}
	log_warnx("no unprivileged user to run the embedded database as");
	log_warnx("hint: create user \"vantage\" (make deps as root)");
	return -1;
}

// Can the cluster owner reach path?  Asked in a child that has dropped
// privileges, because access() as root says yes to everything.
static bool
pgembed_owner_can_search(const struct pgembed *pg, const char *path)
{
	struct spawn_cmd cmd = pgembed_cmd(pg, NULL, NULL);
	pid_t pid;
	int status;

	if (!pg->drop)
		return true;
	pid = fork();
	if (pid == -1) {
		log_warn("could not fork");
		return false;
	}
	// No exec: spawn_drop and access are async-signal-safe.
	if (pid == 0) {
		if (spawn_drop(&cmd) == -1)
			_exit(2);
		_exit(access(path, X_OK) == 0 ? 0 : 1);
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR)
			return false;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The server, running as the owner, must pass through state_dir.  A
// state_dir we own with no group permissions (0700, as we create it) gets
// the owner's group and search permission only, which exposes no names.
static int
pgembed_grant_search(const struct pgembed *pg, const char *state_dir)
{
	const struct group *gr;
	struct stat st;

	if (pgembed_owner_can_search(pg, state_dir))
		return 0;
	if (stat(state_dir, &st) == -1) {
		log_warn("could not stat \"%s\"", state_dir);
		return -1;
	}
	if (st.st_uid == geteuid() && (st.st_mode & S_IRWXG) == 0) {
		gr = getgrgid(pg->run_gid);
		log_info("granting group \"%s\" search permission on \"%s\"",
		    gr != NULL ? gr->gr_name : pg->run_user, state_dir);
		if (chown(state_dir, (uid_t)-1, pg->run_gid) == -1 ||
		    chmod(state_dir, (st.st_mode & 07777) | S_IXGRP) == -1) {
			log_warn("could not change permissions of \"%s\"", state_dir);
			return -1;
		}
		if (pgembed_owner_can_search(pg, state_dir))
			return 0;
	}
	log_warnx("user \"%s\" cannot reach directory \"%s\"", pg->run_user, state_dir);
	log_warnx("hint: every parent directory must be searchable by that "
		  "user (for example chmod o+x or g+x with its group)");
	return -1;
}

// Creates state_dir (0700) and state_dir/pg owned by the cluster owner,
// fills pg->dir with the absolute data directory and checks that its socket
// path fits in sun_path.
static int
pgembed_prepare_dirs(struct pgembed *pg, const char *state_dir)
{
	struct sockaddr_un sun;
	char abs_state[PATH_MAX];
	struct stat st;
	bool have_dir;

	if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		log_warn("could not create directory \"%s\"", state_dir);
		return -1;
	}
	if (realpath(state_dir, abs_state) == NULL) {
		log_warn("could not resolve directory \"%s\"", state_dir);
		return -1;
	}
	pg->dir = pgembed_path(abs_state, "pg");
	pg->log_path = pgembed_path(pg->dir, "log");
	if (strlen(pg->dir) + strlen(PGEMBED_SOCKET_NAME) >= sizeof(sun.sun_path)) {
		log_warnx("unix socket path \"%s%s\" is too long (%zu bytes, maximum %zu)", pg->dir,
		    PGEMBED_SOCKET_NAME, strlen(pg->dir) + strlen(PGEMBED_SOCKET_NAME),
		    sizeof(sun.sun_path) - 1);
		log_warnx("hint: choose a shorter state_dir");
		return -1;
	}

	have_dir = stat(pg->dir, &st) == 0;
	if (!have_dir && errno != ENOENT) {
		log_warn("could not stat \"%s\"", pg->dir);
		return -1;
	}
	if (have_dir && !S_ISDIR(st.st_mode)) {
		log_warnx("\"%s\" exists but is not a directory", pg->dir);
		return -1;
	}
	if (pgembed_pick_user(pg, have_dir ? &st : NULL) == -1)
		return -1;
	if (pgembed_grant_search(pg, abs_state) == -1)
		return -1;
	if (!have_dir && mkdir(pg->dir, 0700) == -1) {
		log_warn("could not create directory \"%s\"", pg->dir);
		return -1;
	}
	if (pg->drop && (!have_dir || st.st_uid == 0)) {
		if (pgembed_exists(pg->dir, "PG_VERSION")) {
			log_warnx("database cluster \"%s\" is owned by root", pg->dir);
			log_warnx("hint: chown -R it to user \"vantage\"");
			return -1;
		}
		if (chown(pg->dir, pg->run_uid, pg->run_gid) == -1) {
			log_warn("could not change owner of \"%s\" to \"%s\"", pg->dir,
			    pg->run_user);
			return -1;
		}
	}
	return 0;
}

static int
pgembed_initdb_with(struct pgembed *pg, const char *locale_arg, struct buf *out)
{
	char *initdb = pgembed_path(pg->bindir, "initdb");
	char *const argv[] = { initdb, "-D", pg->dir, "-U", PGEMBED_ROLE, "--auth=trust", "-E",
		"UTF8", (char *)locale_arg, NULL };
	int rc;

	rc = pgembed_run_step(pg, "initialize database cluster", argv, out, true);
	free(initdb);
	return rc;
}

static int
pgembed_initdb(struct pgembed *pg)
{
	int64_t start = clock_mono_us();
	struct buf out;
	int rc;

	log_info("creating database cluster in \"%s\" as user \"%s\"", pg->dir, pg->run_user);
	buf_init(&out);
	rc = pgembed_initdb_with(pg, "--locale=C.UTF-8", &out);
	// initdb empties the directory it failed in, so a retry is clean.
	if (rc == -1 && strstr(buf_cstr(&out), "invalid locale") != NULL) {
		log_warnx("locale \"C.UTF-8\" is not usable, retrying without locale");
		rc = pgembed_initdb_with(pg, "--no-locale", &out);
	}
	if (rc == -1)
		pgembed_show_lines("initdb", buf_cstr(&out), 30);
	else
		log_info("database cluster initialized in %.2f s", pgembed_seconds_since(start));
	buf_free(&out);
	return rc;
}

// postgresql.conf string literal: quotes doubled, backslashes escaped.
static void
pgembed_conf_quote(struct buf *b, const char *s)
{
	buf_putc(b, '\'');
	for (; *s != '\0'; s++) {
		if (*s == '\'' || *s == '\\')
			buf_putc(b, *s);
		buf_putc(b, *s);
	}
	buf_putc(b, '\'');
}

static int
pgembed_write_file(const struct pgembed *pg, const char *path, const char *text, int flags)
{
	size_t len = strlen(text);
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0600);
	if (fd == -1) {
		log_warn("could not open \"%s\"", path);
		return -1;
	}
	if (pg->drop && fchown(fd, pg->run_uid, pg->run_gid) == -1) {
		log_warn("could not change owner of \"%s\"", path);
		close(fd);
		return -1;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) == -1) {
		log_warn("could not write \"%s\"", path);
		close(fd);
		return -1;
	}
	if (close(fd) == -1) {
		log_warn("could not close \"%s\"", path);
		return -1;
	}
	return 0;
}

// The settings live in vantage.conf, rewritten at every start so that they
// follow the binary and the directory if state_dir moves; postgresql.conf
// only gains one include line, once.
static int
pgembed_write_conf(struct pgembed *pg)
{
	static const char include_line[] = "\ninclude = 'vantage.conf'\n";
	char *conf = pgembed_path(pg->dir, "vantage.conf");
	char *main_conf = pgembed_path(pg->dir, "postgresql.conf");
	char chunk[8192];
	struct atomic_file_opts opts = { .mode = 0600,
		.chown = pg->drop,
		.uid = pg->run_uid,
		.gid = pg->run_gid };
	struct buf b;
	ssize_t n;
	int fd, rc = -1;

	buf_init(&b);
	buf_puts(&b,
	    "# written by vantage-aggregator at every start; edits are lost\n"
	    "listen_addresses = ''\n"
	    "port = " PGEMBED_PORT "\n"
	    "unix_socket_directories = ");
	pgembed_conf_quote(&b, pg->dir);
	buf_puts(&b,
	    "\n"
	    "unix_socket_permissions = 0700\n"
	    "max_connections = 20\n"
	    "shared_buffers = 128MB\n"
	    "fsync = on\n"
	    "synchronous_commit = on\n"
	    "full_page_writes = on\n"
	    "wal_level = minimal\n"
	    "max_wal_senders = 0\n"
	    "logging_collector = off\n");
	if (atomic_file_write(AT_FDCWD, conf, buf_cstr(&b), b.len, &opts) == -1) {
		log_warn("could not write \"%s\"", conf);
		goto fail;
	}

	fd = open(main_conf, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		log_warn("could not open \"%s\"", main_conf);
		goto fail;
	}
	buf_reset(&b);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t)n);
	close(fd);
	if (n == -1) {
		log_warn("could not read \"%s\"", main_conf);
		goto fail;
	}
	if (strstr(buf_cstr(&b), include_line) == NULL &&
	    pgembed_write_file(pg, main_conf, include_line, O_APPEND) == -1)
		goto fail;
	rc = 0;
fail:
	buf_free(&b);
	free(conf);
	free(main_conf);
	return rc;
}

// Reads line `line` (1-based) of postmaster.pid into out; -1 if absent.
static int
pgembed_pidfile_line(const struct pgembed *pg, int line, char *out, size_t outlen)
{
	char *path = pgembed_path(pg->dir, "postmaster.pid");
	char text[1024];
	const char *p = text;
	ssize_t n = -1;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd == -1)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	for (int i = 1; i < line; i++) {
		p = strchr(p, '\n');
		if (p == NULL)
			return -1;
		p++;
	}
	n = (ssize_t)strcspn(p, "\n");
	if ((size_t)n >= outlen)
		n = (ssize_t)outlen - 1;
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	while (n > 0 && out[n - 1] == ' ')
		out[--n] = '\0';
	return 0;
}

// Does anything accept connections on the cluster's socket?  A bare
// connect and close is what monitoring does; the server does not log it.
static bool
pgembed_socket_answers(const struct pgembed *pg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	bool answers;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s%s", pg->dir, PGEMBED_SOCKET_NAME);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return false;
	answers = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return answers;
}

// Is pid a live (not zombie) postgres owned by the cluster owner?  kill(pid,
// 0), which pg_ctl status and the postmaster rely on, also says yes for a
// zombie nobody reaps (a container without init) and for a pid reused by
// another program after a reboot.  Without /proc the answer is yes and
// pg_ctl decides.
static bool
pgembed_postmaster_alive(const struct pgembed *pg, long pid)
{
	char path[64], text[512];
	const char *open_paren, *close_paren;
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return access("/proc/self/stat", F_OK) != 0;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	// "pid (comm) state ...", and comm may itself contain ')'.
	open_paren = strchr(text, '(');
	close_paren = strrchr(text, ')');
	if (open_paren == NULL || close_paren == NULL || close_paren[1] != ' ')
		return false;
	if (close_paren[2] == 'Z' || close_paren[2] == 'X')
		return false;
	if ((size_t)(close_paren - open_paren - 1) != strlen("postgres") ||
	    strncmp(open_paren + 1, "postgres", strlen("postgres")) != 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld", pid);
	if (stat(path, &st) == -1)
		return false;
	return st.st_uid == (pg->drop ? pg->run_uid : geteuid());
}

// A server still running in our directory means the previous aggregator
// died without stopping it (kill -9, OOM).  Returns 1 if it is running and
// accepts connections (adopted), 0 if there is none or its lock file was
// stale, -1 if it runs but never accepted connections.
static int
pgembed_adopt(struct pgembed *pg)
{
	char *pg_ctl = pgembed_path(pg->bindir, "pg_ctl");
	char *pid_path = pgembed_path(pg->dir, "postmaster.pid");
	char *const argv[] = { pg_ctl, "-D", pg->dir, "status", NULL };
	int64_t deadline = clock_mono_us() + PGEMBED_WAIT_US;
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	char pid_text[32], pm_status[32] = "";
	struct buf out;
	long pid;
	int status, rc = 0;

	if (pgembed_pidfile_line(pg, 1, pid_text, sizeof(pid_text)) == -1)
		goto done;
	pid = strtol(pid_text, NULL, 10);
	// The postmaster would refuse to start over this lock file; its
	// shared-memory interlock still guards the data if we are wrong.
	if (pid > 0 && !pgembed_postmaster_alive(pg, pid)) {
		log_info("removing stale lock file \"%s\" (pid %ld is not a "
			 "running postgres)",
		    pid_path, pid);
		if (unlink(pid_path) == -1 && errno != ENOENT) {
			log_warn("could not remove \"%s\"", pid_path);
			rc = -1;
		}
		goto done;
	}
	buf_init(&out);
	if (pgembed_run(pg, argv, &out, &status) == -1 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		log_info("lock file \"%s\" is stale", pid_path);
		buf_free(&out);
		goto done;
	}
	buf_free(&out);
	log_info("adopting database server already running in \"%s\" (pid %ld)", pg->dir, pid);
	// Line 8 of postmaster.pid is the postmaster's state (PostgreSQL >= 10).
	while (clock_mono_us() < deadline) {
		if (pgembed_pidfile_line(pg, 8, pm_status, sizeof(pm_status)) == -1 ||
		    !pgembed_postmaster_alive(pg, pid)) {
			log_info("database server in \"%s\" exited while being "
				 "adopted",
			    pg->dir);
			goto done;
		}
		if (strcmp(pm_status, "ready") == 0 && pgembed_socket_answers(pg)) {
			rc = 1;
			goto done;
		}
		nanosleep(&pause, NULL);
	}
	log_warnx("database server in \"%s\" (pid %ld) is not accepting "
		  "connections after " PGEMBED_WAIT_S " s (state \"%s\")",
	    pg->dir, pid, pm_status);
	rc = -1;
done:
	free(pid_path);
	free(pg_ctl);
	return rc;
}

static int
pgembed_pg_ctl_start(struct pgembed *pg)
{
	char *pg_ctl = pgembed_path(pg->bindir, "pg_ctl");
	char *const argv[] = { pg_ctl, "-D", pg->dir, "-l", pg->log_path, "-w", "-t",
		PGEMBED_WAIT_S, "start", NULL };
	int64_t start = clock_mono_us();
	struct buf out;
	int rc;

	log_info("starting database server in \"%s\"", pg->dir);
	buf_init(&out);
	rc = pgembed_run_step(pg, "start database server", argv, &out, true);
	if (rc == -1) {
		pgembed_show_lines("pg_ctl", buf_cstr(&out), 10);
		pgembed_show_log_tail(pg);
	} else {
		log_info("database server started in %.2f s", pgembed_seconds_since(start));
	}
	buf_free(&out);
	free(pg_ctl);
	return rc;
}

static int
pgembed_pg_ctl_stop(struct pgembed *pg)
{
	char *pg_ctl = pgembed_path(pg->bindir, "pg_ctl");
	char *const argv[] = { pg_ctl, "-D", pg->dir, "-m", "fast", "-w", "-t", PGEMBED_WAIT_S,
		"stop", NULL };
	struct buf out;
	int rc;

	log_info("stopping database server in \"%s\"", pg->dir);
	buf_init(&out);
	rc = pgembed_run_step(pg, "stop database server", argv, &out, true);
	if (rc == -1)
		pgembed_show_lines("pg_ctl", buf_cstr(&out), 10);
	buf_free(&out);
	free(pg_ctl);
	return rc;
}

// Creates database "vantage" unless an earlier start did; a crash between
// createdb and the marker leaves a database that "already exists", which
// is just as good.
static int
pgembed_createdb(struct pgembed *pg)
{
	char *createdb = pgembed_path(pg->bindir, "createdb");
	char *const argv[] = { createdb, "-h", pg->dir, "-p", PGEMBED_PORT, "-U", PGEMBED_ROLE,
		PGEMBED_DB, NULL };
	char *marker = pgembed_path(pg->dir, PGEMBED_MARKER);
	struct buf out;
	int rc = 0;

	if (access(marker, F_OK) == 0)
		goto done;
	log_info("creating database \"" PGEMBED_DB "\"");
	buf_init(&out);
	if (pgembed_run_step(pg, "create database \"" PGEMBED_DB "\"", argv, &out, true) == -1) {
		if (strstr(buf_cstr(&out), "already exists") != NULL) {
			log_info("database \"" PGEMBED_DB "\" already exists");
		} else {
			pgembed_show_lines("createdb", buf_cstr(&out), 10);
			rc = -1;
		}
	}
	buf_free(&out);
	if (rc == 0)
		rc = pgembed_write_file(pg, marker, "created by vantage-aggregator\n", O_TRUNC);
done:
	free(marker);
	free(createdb);
	return rc;
}

// libpq conninfo value: quoted only when it has to be.
static char *
pgembed_conninfo(const struct pgembed *pg)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, "host=");
	if (pg->dir[strcspn(pg->dir, " \t\n\r'\\")] == '\0') {
		buf_puts(&b, pg->dir);
	} else {
		buf_putc(&b, '\'');
		for (const char *s = pg->dir; *s != '\0'; s++) {
			if (*s == '\'' || *s == '\\')
				buf_putc(&b, '\\');
			buf_putc(&b, *s);
		}
		buf_putc(&b, '\'');
	}
	buf_puts(&b, " port=" PGEMBED_PORT " dbname=" PGEMBED_DB " user=" PGEMBED_ROLE);
	buf_cstr(&b);
	return (char *)b.data;
}

struct pgembed *
pgembed_start(const char *state_dir, char **conninfo)
{
	int64_t start = clock_mono_us();
	struct pgembed *pg = xcalloc(1, sizeof(*pg));
	int adopted;

	*conninfo = NULL;
	pgembed_make_env(pg);
	pg->bindir = pgembed_find_bindir(pg);
	if (pg->bindir == NULL)
		goto fail;
	log_debug("using PostgreSQL programs in \"%s\"", pg->bindir);
	if (pgembed_prepare_dirs(pg, state_dir) == -1)
		goto fail;
	if (!pgembed_exists(pg->dir, "PG_VERSION") && pgembed_initdb(pg) == -1)
		goto fail;
	if (pgembed_write_conf(pg) == -1)
		goto fail;
	adopted = pgembed_adopt(pg);
	if (adopted == -1)
		goto fail;
	if (adopted == 0 && pgembed_pg_ctl_start(pg) == -1)
		goto fail;
	pg->running = true;
	pg->restart_backoff_s = PGEMBED_RESTART_MIN_S;
	if (pgembed_createdb(pg) == -1)
		goto fail;
	*conninfo = pgembed_conninfo(pg);
	log_info("embedded database ready in %.2f s (socket directory \"%s\")",
	    pgembed_seconds_since(start), pg->dir);
	return pg;
fail:
	if (pg->running)
		(void)pgembed_pg_ctl_stop(pg);
	pgembed_free(pg);
	return NULL;
}

// A restart that did not work: the next one waits longer.
static void
pgembed_restart_later(struct pgembed *pg)
{
	pg->restart_at_mono = clock_mono_us() + (int64_t)pg->restart_backoff_s * 1000000;
	pg->restart_backoff_s = pg->restart_backoff_s * 2 > PGEMBED_RESTART_MAX_S ?
	    PGEMBED_RESTART_MAX_S :
	    pg->restart_backoff_s * 2;
}

// Reaps the pg_ctl started by pgembed_supervise once it has exited.
static void
pgembed_reap_restart(struct pgembed *pg)
{
	char how[64];
	int status;
	pid_t pid = waitpid(pg->restart_pid, &status, WNOHANG);

	if (pid == 0 || (pid == -1 && errno == EINTR))
		return;
	pg->restart_pid = 0;
	// pid -1 (reaped elsewhere): the next check looks at the server itself.
	if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		log_info("database server restarted in %.2f s",
		    pgembed_seconds_since(pg->restart_started_mono));
		pg->restart_backoff_s = PGEMBED_RESTART_MIN_S;
		return;
	}
	if (pid > 0) {
		pgembed_describe_status(status, how, sizeof(how));
		log_warnx("could not restart the database server in \"%s\" (pg_ctl %s); "
			  "retrying in %d s, see \"%s\"",
		    pg->dir, how, pg->restart_backoff_s, pg->log_path);
	}
	pgembed_restart_later(pg);
}

static bool
pgembed_server_running(const struct pgembed *pg)
{
	char pid_text[32];
	long pid;

	if (pgembed_pidfile_line(pg, 1, pid_text, sizeof(pid_text)) == -1)
		return false;
	pid = strtol(pid_text, NULL, 10);
	return pid > 0 && pgembed_postmaster_alive(pg, pid);
}

void
pgembed_supervise(struct pgembed *pg)
{
	char *argv[11];
	char *exec_error;
	struct spawn_cmd cmd;
	int logfd;
	pid_t pid;

	if (pg == NULL || !pg->running)
		return;
	if (pg->restart_pid > 0) {
		pgembed_reap_restart(pg);
		return;
	}
	if (pgembed_server_running(pg)) {
		pg->restart_backoff_s = PGEMBED_RESTART_MIN_S;
		return;
	}
	if (clock_mono_us() < pg->restart_at_mono)
		return;
	logfd = open(pg->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (logfd == -1) {
		log_warn("could not open \"%s\"", pg->log_path);
		pgembed_restart_later(pg);
		return;
	}
	argv[0] = pgembed_path(pg->bindir, "pg_ctl");
	argv[1] = "-D";
	argv[2] = pg->dir;
	argv[3] = "-l";
	argv[4] = pg->log_path;
	argv[5] = "-w";
	argv[6] = "-t";
	argv[7] = PGEMBED_WAIT_S;
	argv[8] = "start";
	argv[9] = NULL;
	exec_error = pgembed_exec_error(argv[0]);
	cmd = pgembed_cmd(pg, argv, exec_error);
	log_warnx("the embedded database server in \"%s\" is not running; restarting it", pg->dir);
	pid = spawn_fork(&cmd, -1, logfd, logfd);
	if (pid == -1) {
		log_warn("could not fork for \"%s\"", argv[0]);
		pgembed_restart_later(pg);
	} else {
		pg->restart_pid = pid;
		pg->restart_started_mono = clock_mono_us();
	}
	close(logfd);
	free(exec_error);
	free(argv[0]);
}

void
pgembed_stop(struct pgembed *pg)
{
	if (pg == NULL)
		return;
	if (pg->restart_pid > 0)
		(void)waitpid(pg->restart_pid, NULL, 0);
	if (pg->running)
		(void)pgembed_pg_ctl_stop(pg);
	pgembed_free(pg);
}
