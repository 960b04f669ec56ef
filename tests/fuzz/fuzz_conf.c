// SPDX-License-Identifier: Apache-2.0
//
// libFuzzer target for the two config loaders, agent/agent_conf.c (agent.yml) and
// aggregator/agg_conf.c (vantage.yml), and through them common/yconf.c.  The
// loaders read a path, so each input is written to one temporary file made
// at the first run and rewritten in place (ftruncate + pwrite) for the next,
// which keeps the loop free of per-run file creation.  Besides what ASan and
// UBSan catch, it checks the promise of both headers: every error reads
// "FILE:LINE: message", and a config that loads keeps the documented
// invariants.  Must never write anywhere but its own temporary file.
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_conf.h"
#include "agg_conf.h"

static char fuzz_path[4096];
static int fuzz_fd = -1;

static void __attribute__((noreturn, format(printf, 1, 2))) fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz_conf: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static void
fuzz_unlink(void)
{
	unlink(fuzz_path);
}

// The file is unlinked at once and reached through /proc, so that not even
// a crash leaves it behind; without /proc it is removed at exit instead.
static void
fuzz_open(void)
{
	const char *dir = getenv("TMPDIR");
	char proc_path[64];

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(fuzz_path, sizeof(fuzz_path), "%s/vantage-fuzz-conf.XXXXXX", dir);
	fuzz_fd = mkstemp(fuzz_path);
	if (fuzz_fd < 0) {
		perror(fuzz_path);
		exit(1);
	}
	snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fuzz_fd);
	if (access(proc_path, R_OK) == 0) {
		unlink(fuzz_path);
		snprintf(fuzz_path, sizeof(fuzz_path), "%s", proc_path);
	} else {
		atexit(fuzz_unlink);
	}
}

static void
fuzz_write(const uint8_t *data, size_t size)
{
	size_t done = 0;
	ssize_t n;

	if (ftruncate(fuzz_fd, (off_t)size) < 0) {
		perror("ftruncate");
		exit(1);
	}
	while (done < size) {
		n = pwrite(fuzz_fd, data + done, size - done, (off_t)done);
		if (n <= 0) {
			perror("pwrite");
			exit(1);
		}
		done += (size_t)n;
	}
}

// "PATH:LINE: " with LINE a positive decimal, then a non-empty message.
static void
fuzz_check_error(const char *loader, const char *err)
{
	size_t plen = strlen(fuzz_path);
	const char *p = err + plen;

	if (strncmp(err, fuzz_path, plen) != 0 || *p++ != ':' || *p < '1' || *p > '9')
		fuzz_fail("%s: error does not start with \"%s:LINE\": \"%s\"", loader, fuzz_path,
		    err);
	while (isdigit((unsigned char)*p))
		p++;
	if (p[0] != ':' || p[1] != ' ' || p[2] == '\0')
		fuzz_fail("%s: error is not \"FILE:LINE: message\": \"%s\"", loader, err);
}

static void
fuzz_check_target(const struct target_conf *t, const char *what)
{
	if (t->key == NULL || t->kind < PROBE_HTTP || t->kind > PROBE_ICMP)
		fuzz_fail("%s at line %d has no key or no kind", what, t->line);
	if (t->kind == PROBE_HTTP && (t->http.url == NULL || t->http.n_expect > CONF_MAX_EXPECT))
		fuzz_fail("%s \"%s\": http spec without url or with %zu expect_status", what,
		    t->key, t->http.n_expect);
	if (t->interval_ms < 100 || t->timeout_ms < 10 || t->confirm < 1 || t->confirm > 10 ||
	    t->retry_interval_ms < 100)
		fuzz_fail("%s \"%s\": timing out of range", what, t->key);
}

static void
fuzz_check_agg(const struct agg_conf *conf)
{
	size_t i;

	if (conf->path == NULL || strcmp(conf->path, fuzz_path) != 0)
		fuzz_fail("agg_conf_load: path not kept");
	if (!conf->insecure && (conf->curve_secret_key == NULL || conf->agent_keys_dir == NULL))
		fuzz_fail("agg_conf_load: secure config without keys");
	for (i = 0; i < conf->n_controls; i++)
		fuzz_check_target(&conf->controls[i], "control");
	for (i = 0; i < conf->n_targets; i++) {
		fuzz_check_target(&conf->targets[i], "target");
		// Keys are unique, so the lookup must find this very entry.
		if (agg_conf_target_index(conf, conf->targets[i].key) != (int)i)
			fuzz_fail("target \"%s\" at %zu found at %d", conf->targets[i].key, i,
			    agg_conf_target_index(conf, conf->targets[i].key));
	}
}

static void
fuzz_check_agent(const struct agent_conf *conf)
{
	if (conf->path == NULL || strcmp(conf->path, fuzz_path) != 0)
		fuzz_fail("agent_conf_load: path not kept");
	if (conf->name == NULL || conf->region == NULL || conf->aggregator_endpoint == NULL ||
	    conf->spool_dir == NULL)
		fuzz_fail("agent_conf_load: required field left NULL");
	if (conf->max_concurrency < 1 || conf->max_concurrency > 65536 ||
	    conf->spool_max < (UINT64_C(1) << 20))
		fuzz_fail("agent_conf_load: limits out of range");
	if (!conf->insecure && (conf->secret_key == NULL || conf->aggregator_public_key == NULL))
		fuzz_fail("agent_conf_load: secure config without keys");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct agg_conf *agg;
	struct agent_conf *agent;

	if (fuzz_fd < 0)
		fuzz_open();
	fuzz_write(data, size);

	err[0] = '\0';
	agg = agg_conf_load(fuzz_path, err, sizeof(err));
	if (agg == NULL)
		fuzz_check_error("agg_conf_load", err);
	else
		fuzz_check_agg(agg);
	agg_conf_free(agg);

	err[0] = '\0';
	agent = agent_conf_load(fuzz_path, err, sizeof(err));
	if (agent == NULL)
		fuzz_check_error("agent_conf_load", err);
	else
		fuzz_check_agent(agent);
	agent_conf_free(agent);
	return 0;
}
