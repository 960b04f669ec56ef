// SPDX-License-Identifier: Apache-2.0
//
// vantagectl: the operator's command line.  Talks to the aggregator's HTTP
// API only (never to the database), so it works wherever the API is
// reachable.  This version reads: status of the service, targets with the
// latest result per region, and agents; --json prints the API's JSON as is.
// The one command that works offline is `keys new`: it makes CurveZMQ key
// files (common/curvekey) and never overwrites one.
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "curvekey.h"
#include "http_client.h"
#include "version.h"
#include "wire.h"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: vantagectl [--url URL] [--token TOKEN] [--json] COMMAND\n"
	    "commands:\n"
	    "  health          aggregator health and ingest counters\n"
	    "  targets         targets with the latest result of every region\n"
	    "  target KEY      one target\n"
	    "  agents          connected agents\n"
	    "  status          overall and per-target state (quorum verdicts)\n"
	    "  incidents       incidents, newest first (--open: only open ones)\n"
	    "  incident ID     one incident with its timeline and post-mortem\n"
	    "  keys new NAME   write the CurveZMQ key pair NAME.key (secret) and NAME.pub\n"
	    "options:\n"
	    "  --url URL       aggregator API (default $VANTAGE_URL or http://127.0.0.1:8080)\n"
	    "  --token TOKEN   API token (default $VANTAGE_TOKEN)\n"
	    "  --json          print the API's JSON\n"
	    "  --open          with incidents: only open ones\n"
	    "  --dir DIR       with keys new: where to write the files (default .)\n"
	    "  -h, --help      show this help\n"
	    "  -V, --version   show the version\n");
}

static const char *
ctl_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "-";
}

static void
ctl_print_targets(json_t *list)
{
	size_t i, j;
	json_t *t, *r;

	printf("%-24s %-10s %-8s %-6s %-10s %9s %9s %7s\n", "TARGET", "REGION", "OUTCOME", "STATUS",
	    "REASON", "CONNECT", "TOTAL", "AGE");
	json_array_foreach(list, i, t) {
		json_t *regions = json_object_get(t, "regions");

		if (json_array_size(regions) == 0)
			printf("%-24s %-10s %-8s\n", ctl_str(t, "key"), "-", "no data");
		json_array_foreach(regions, j, r) {
			json_t *ph = json_object_get(r, "phases_us");

			printf("%-24s %-10s %-8s %-6lld %-10s %7.1fms %7.1fms %6.1fs\n",
			    ctl_str(t, "key"), ctl_str(r, "region"), ctl_str(r, "outcome"),
			    (long long)json_integer_value(json_object_get(r, "http_status")),
			    json_is_string(json_object_get(r, "reason")) ? ctl_str(r, "reason") :
									   "-",
			    json_integer_value(json_object_get(ph, "connect")) / 1000.0,
			    json_integer_value(json_object_get(ph, "total")) / 1000.0,
			    json_real_value(json_object_get(r, "age_s")));
		}
	}
}

static void
ctl_print_agents(json_t *doc)
{
	json_t *list = json_object_get(doc, "agents");
	json_t *hs = json_object_get(doc, "handshakes");
	json_t *refused = json_object_get(hs, "refused");
	size_t i;
	json_t *a;

	printf("%-16s %-10s %-9s %-26s %10s %10s\n", "AGENT", "REGION", "CONNECTED", "LAST SEEN",
	    "RECEIVED", "SPOOL");
	json_array_foreach(list, i, a) {
		printf("%-16s %-10s %-9s %-26s %10lld %10lld\n", ctl_str(a, "name"),
		    ctl_str(a, "region"),
		    json_is_true(json_object_get(a, "connected")) ? "yes" : "no",
		    ctl_str(a, "last_seen"),
		    (long long)json_integer_value(json_object_get(a, "results_received")),
		    (long long)json_integer_value(json_object_get(a, "spool_depth")));
	}
	// Refused connections have no row above: say how many there were.
	if (json_integer_value(json_object_get(hs, "keys")) > 0 ||
	    json_integer_value(json_object_get(hs, "refused_total")) > 0)
		printf(
		    "\nCurveZMQ: %lld keys admitted; refused: %lld unknown key, %lld revoked key, "
		    "%lld plaintext, %lld other handshakes, %lld Hellos naming another agent\n",
		    (long long)json_integer_value(json_object_get(hs, "keys")),
		    (long long)json_integer_value(json_object_get(refused, "unknown_key")),
		    (long long)json_integer_value(json_object_get(refused, "revoked_key")),
		    (long long)json_integer_value(json_object_get(refused, "plaintext")),
		    (long long)(json_integer_value(json_object_get(refused, "handshake")) +
			json_integer_value(json_object_get(refused, "mechanism"))),
		    (long long)json_integer_value(json_object_get(refused, "hello_name_mismatch")));
}

static void
ctl_print_status(json_t *doc)
{
	size_t i;
	json_t *t;

	printf("overall: %s\n\n", ctl_str(doc, "status"));
	printf("%-24s %-9s %4s %4s %4s %6s  %s\n", "TARGET", "STATE", "UP", "DOWN", "ABST",
	    "QUORUM", "SINCE");
	json_array_foreach(json_object_get(doc, "targets"), i, t) {
		printf("%-24s %-9s %4lld %4lld %4lld %6lld  %s%s\n", ctl_str(t, "key"),
		    ctl_str(t, "state"),
		    (long long)json_integer_value(json_object_get(t, "regions_up")),
		    (long long)json_integer_value(json_object_get(t, "regions_down")),
		    (long long)json_integer_value(json_object_get(t, "regions_abstaining")),
		    (long long)json_integer_value(json_object_get(t, "quorum")),
		    ctl_str(t, "state_since"),
		    json_is_true(json_object_get(t, "flapping")) ? "  (flapping)" : "");
	}
}

static void
ctl_print_incidents(json_t *list)
{
	size_t i;
	json_t *in;

	printf("%6s %-20s %-9s %-9s %-33s %8s\n", "ID", "TARGET", "KIND", "STATE", "STARTED",
	    "DETECT");
	json_array_foreach(list, i, in) {
		printf("%6lld %-20s %-9s %-9s %-33s %7.1fs%s\n",
		    (long long)json_integer_value(json_object_get(in, "id")), ctl_str(in, "target"),
		    ctl_str(in, "kind"), ctl_str(in, "state"), ctl_str(in, "started_at"),
		    json_number_value(json_object_get(in, "time_to_detect_s")),
		    json_is_true(json_object_get(in, "flapping")) ? " flapping" : "");
	}
}

static void
ctl_print_incident(json_t *in)
{
	json_t *pm = json_object_get(in, "postmortem");
	size_t i;
	json_t *e;

	printf("incident %lld: %s of \"%s\", %s\n",
	    (long long)json_integer_value(json_object_get(in, "id")), ctl_str(in, "kind"),
	    ctl_str(in, "target"), ctl_str(in, "state"));
	printf("  started   %s\n  detected  %s (%.1f s)\n  resolved  %s\n\ntimeline:\n",
	    ctl_str(in, "started_at"), ctl_str(in, "detected_at"),
	    json_number_value(json_object_get(in, "time_to_detect_s")), ctl_str(in, "resolved_at"));
	json_array_foreach(json_object_get(in, "timeline"), i, e)
		printf("  %-33s %-14s %s\n", ctl_str(e, "at"), ctl_str(e, "kind"),
		    ctl_str(e, "message"));
	printf("\nalerts:\n");
	json_array_foreach(json_object_get(in, "alerts"), i, e)
		printf("  %-12s %-18s sent %s after %lld attempts%s%s\n", ctl_str(e, "channel"),
		    ctl_str(e, "event"), ctl_str(e, "sent_at"),
		    (long long)json_integer_value(json_object_get(e, "attempts")),
		    json_is_string(json_object_get(e, "last_error")) ? ", last error: " : "",
		    json_is_string(json_object_get(e, "last_error")) ? ctl_str(e, "last_error") :
								       "");
	if (json_is_string(json_object_get(pm, "markdown")))
		printf("\npost-mortem (%s):\n\n%s\n", ctl_str(pm, "state"),
		    ctl_str(pm, "markdown"));
}

// keys new NAME: the pair for an agent (NAME.pub goes to the aggregator's
// agent_keys_dir, and its file name is the agent's name) or for the
// aggregator itself.
static int
ctl_keys_new(const char *dir, const char *name)
{
	char err[4200];

	if (!wire_name_ok(name, WIRE_MAX_NAME)) {
		fprintf(stderr,
		    "vantagectl: key name \"%s\" must be 1 to %d characters from A-Z, "
		    "a-z, 0-9, \".\", \"_\" and \"-\" (it is the agent's name)\n",
		    name, WIRE_MAX_NAME);
		return 2;
	}
	if (curvekey_generate(dir, name, err, sizeof(err)) < 0) {
		fprintf(stderr, "vantagectl: %s\n", err);
		return 1;
	}
	printf("wrote %s/%s.key (secret: keep it on that host, mode 0600) and %s/%s.pub (public)\n",
	    dir, name, dir, name);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "open", no_argument, NULL, 'o' },
		{ "dir", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = getenv("VANTAGE_URL"), *token = getenv("VANTAGE_TOKEN");
	const char *cmd, *path, *key_dir = ".";
	char full[2048], err[HTTP_CLIENT_ERROR_MAX + 64];
	struct buf body;
	json_error_t jerr;
	json_t *doc;
	bool as_json = false, only_open = false;
	long status;
	int ch, rc = 0;

	while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			url = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 'o':
			only_open = true;
			break;
		case 'D':
			key_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vantagectl %s\n", vantage_version);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (url == NULL || *url == '\0')
		url = "http://127.0.0.1:8080";
	cmd = argv[optind];
	if (strcmp(cmd, "keys") == 0) {
		if (optind + 3 != argc || strcmp(argv[optind + 1], "new") != 0) {
			fprintf(stderr,
			    "vantagectl: usage: vantagectl keys new NAME [--dir DIR]\n");
			return 2;
		}
		return ctl_keys_new(key_dir, argv[optind + 2]);
	}
	if (strcmp(cmd, "health") == 0 && optind + 1 == argc) {
		path = "/healthz";
	} else if (strcmp(cmd, "targets") == 0 && optind + 1 == argc) {
		path = "/api/v1/targets";
	} else if (strcmp(cmd, "agents") == 0 && optind + 1 == argc) {
		path = "/api/v1/agents";
	} else if (strcmp(cmd, "status") == 0 && optind + 1 == argc) {
		path = "/api/v1/status";
	} else if (strcmp(cmd, "incidents") == 0 && optind + 1 == argc) {
		path = only_open ? "/api/v1/incidents?state=open" : "/api/v1/incidents";
	} else if ((strcmp(cmd, "target") == 0 || strcmp(cmd, "incident") == 0) &&
	    optind + 2 == argc) {
		char *escaped = http_client_escape(argv[optind + 1]);

		snprintf(full, sizeof(full), "%s/api/v1/%s/%s", url,
		    strcmp(cmd, "target") == 0 ? "targets" : "incidents", escaped ? escaped : "");
		free(escaped);
		path = NULL;
	} else {
		fprintf(stderr, "vantagectl: unknown command or wrong arguments: \"%s\"\n", cmd);
		usage(stderr);
		return 2;
	}
	if (path != NULL)
		snprintf(full, sizeof(full), "%s%s", url, path);
	http_client_global_init();
	buf_init(&body);
	status = http_client_get(full, token, 10000, &body, err, sizeof(err));
	if (status < 0) {
		fprintf(stderr, "vantagectl: could not reach the aggregator at \"%s\": %s\n", url,
		    err);
		rc = 1;
		goto out;
	}
	doc = json_loadb((const char *)body.data, body.len, 0, &jerr);
	if (doc == NULL) {
		fprintf(stderr, "vantagectl: the aggregator answered %ld with invalid JSON: %s\n",
		    status, jerr.text);
		rc = 1;
		goto out;
	}
	if (strcmp(cmd, "health") == 0) {
		// An unhealthy aggregator (503: database down) still says why.
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
		rc = status == 200 ? 0 : 1;
	} else if (status != 200) {
		fprintf(stderr, "vantagectl: %s (HTTP %ld)\n", ctl_str(doc, "error"), status);
		rc = 1;
	} else if (as_json) {
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else if (strcmp(cmd, "targets") == 0) {
		ctl_print_targets(json_object_get(doc, "targets"));
	} else if (strcmp(cmd, "target") == 0) {
		json_t *one = json_array();

		json_array_append(one, doc);
		ctl_print_targets(one);
		json_decref(one);
	} else if (strcmp(cmd, "status") == 0) {
		ctl_print_status(doc);
	} else if (strcmp(cmd, "incidents") == 0) {
		ctl_print_incidents(json_object_get(doc, "incidents"));
	} else if (strcmp(cmd, "incident") == 0) {
		ctl_print_incident(doc);
	} else {
		ctl_print_agents(doc);
	}
	json_decref(doc);
out:
	buf_free(&body);
	http_client_global_cleanup();
	return rc;
}
