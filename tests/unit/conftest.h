// SPDX-License-Identifier: Apache-2.0
//
// Shared by the unit tests that need a loaded vantage.yml (test_verdict.c,
// test_incident.c): the text goes through agg_conf_load, the parser the
// aggregator uses, so that every default a test does not set is the one
// production gets.  The file is an in-memory one (memfd), so nothing is
// left behind on any way out.  Fails the running test if the text does not
// load: a fixture that does not parse is a broken test, not a skip.
#ifndef VANTAGE_CONFTEST_H
#define VANTAGE_CONFTEST_H

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agg_conf.h"

// Parses text as vantage.yml; the caller frees it with agg_conf_free.
static inline struct agg_conf *
conftest_load(const char *text)
{
	char path[64], err[512] = "";
	struct agg_conf *conf;
	int fd = memfd_create("vantage.yml", 0);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fail_msg("could not write the test configuration to a memfd");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	conf = agg_conf_load(path, err, sizeof(err));
	close(fd);
	if (conf == NULL)
		fail_msg("the test configuration does not load: %s", err);
	return conf;
}

#endif
