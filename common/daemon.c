// SPDX-License-Identifier: Apache-2.0
//
// Shared daemon command line; see daemon.h.
#include "daemon.h"

#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "version.h"

static void
daemon_usage(FILE *out, const char *progname, const char *default_conf)
{
	fprintf(out,
	    "usage: %s [-dnvhV] [-f %s]\n"
	    "  -f FILE  configuration file (default %s)\n"
	    "  -d       stay in the foreground, log to stderr\n"
	    "  -n       check the configuration and exit\n"
	    "  -v       verbose (debug) logging\n"
	    "  -h       show this help\n"
	    "  -V       show the version\n",
	    progname,
	    default_conf[0] == '/' ? default_conf + (sizeof("/etc/vantage/") - 1) : default_conf,
	    default_conf);
}

int
daemon_parse_args(int argc, char **argv, const char *progname, const char *default_conf,
    struct daemon_opts *opts, int *status)
{
	int ch;

	opts->conf_path = default_conf;
	opts->check_only = false;
	opts->verbose = false;
	while ((ch = getopt(argc, argv, "f:dnvhV")) != -1) {
		switch (ch) {
		case 'f':
			opts->conf_path = optarg;
			break;
		case 'd':
			break; // always foreground with logs on stderr (systemd)
		case 'n':
			opts->check_only = true;
			break;
		case 'v':
			opts->verbose = true;
			break;
		case 'h':
			daemon_usage(stdout, progname, default_conf);
			*status = 0;
			return -1;
		case 'V':
			printf("%s %s\n", progname, vantage_version);
			*status = 0;
			return -1;
		default:
			daemon_usage(stderr, progname, default_conf);
			*status = 2;
			return -1;
		}
	}
	if (optind != argc) {
		daemon_usage(stderr, progname, default_conf);
		*status = 2;
		return -1;
	}
	return 0;
}

void
daemon_warn_root(void)
{
	// A warning, not a refusal: tests and containers run as root, and
	// the aggregator then runs its embedded PostgreSQL as another user.
	if (geteuid() == 0)
		log_warnx("running as root; run unprivileged (see deploy/)");
}
