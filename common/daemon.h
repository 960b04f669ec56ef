// SPDX-License-Identifier: Apache-2.0
//
// The command line both daemons share (DESIGN.md §2): -f FILE -d -n -v -h -V.
// One parser so that vantage-agent and vantage-aggregator never drift apart.
#ifndef VANTAGE_DAEMON_H
#define VANTAGE_DAEMON_H

#include <stdbool.h>

struct daemon_opts {
	const char *conf_path; // -f, or the default given
	bool check_only;       // -n
	bool verbose;          // -v
};

// Parses argv.  Returns -1 when the process should exit now with *status
// (after -h, -V or a usage error, which are printed), else 0.
int daemon_parse_args(int argc, char **argv, const char *progname, const char *default_conf,
    struct daemon_opts *opts, int *status);

// Logs a warning when the process runs as root: neither daemon needs any
// privilege (deploy/systemd runs them as an unprivileged user).
void daemon_warn_root(void);

#endif
