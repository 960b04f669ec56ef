// SPDX-License-Identifier: Apache-2.0
//
// vantage.yml: builds a struct agg_conf from the YAML tree of common/yconf
// (DESIGN.md §3), filling defaults and checking every value and every cross
// reference (target and alert channel names unique, regions known, one
// probe kind per target, one delivery method per channel) so that nothing
// downstream has to.  It never opens the files it names and
// never connects anywhere: "-n" must be safe to run on any host.
#include "agg_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"
#include "yconf.h"

#define AGG_CONF_REGION_MAX 64
#define AGG_CONF_TARGET_MAX 128
#define AGG_CONF_HOST_MAX 253
#define AGG_CONF_URL_MAX 2048
#define AGG_CONF_METHOD_MAX 16
#define AGG_CONF_TLS_DAYS_MAX 3650u
#define AGG_CONF_CONFIRM_MAX 10u
#define AGG_CONF_QUORUM_MAX 1000u
#define AGG_CONF_ALERT_NAME_MAX 64
#define AGG_CONF_EXEC_MAX 4096
#define AGG_CONF_EXEC_ARGS_MAX 64

#define MS_SECOND UINT64_C(1000)
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (3600 * MS_SECOND)
#define MS_DAY (24 * MS_HOUR)

// Bounds on the timing keys; all fit the uint32_t milliseconds of
// struct target_conf.
#define AGG_CONF_INTERVAL_MIN UINT64_C(100)
#define AGG_CONF_TIMEOUT_MIN UINT64_C(10)
#define AGG_CONF_RETRY_MIN UINT64_C(100)
#define AGG_CONF_ALERT_TIMEOUT_MAX (120 * MS_SECOND)
#define AGG_CONF_RAW_MIN (2 * MS_DAY)
#define AGG_CONF_RAW_DEFAULT (30 * MS_DAY)
#define AGG_CONF_ROLLUP_DEFAULT (400 * MS_DAY)
#define AGG_CONF_RETENTION_MAX (36500 * MS_DAY)

static const char *const agg_conf_keys[] = {
	"listen",
	"database",
	"state_dir",
	"security",
	"api_tokens",
	"regions",
	"defaults",
	"controls",
	"targets",
	"alerts",
	"status_page",
	"retention",
	NULL,
};
static const char *const agg_conf_listen_keys[] = { "zmq", "http", NULL };
static const char *const agg_conf_security_keys[] = { "curve_secret_key", "agent_keys_dir",
	"insecure", NULL };
static const char *const agg_conf_token_keys[] = { "name", "token_file", "role", NULL };
static const char *const agg_conf_region_keys[] = { "name", "domain", NULL };
static const char *const agg_conf_defaults_keys[] = { "interval", "timeout", "confirm",
	"retry_interval", "quorum", "recover", "min_voters", "distinct_domains", "recover_for",
	"confirm_span", "reopen_window", "settle_for", NULL };

static const char *const agg_conf_http_keys[] = {
	"url",
	"method",
	"expect_status",
	"body_contains",
	"max_latency",
	"follow_redirects",
	"tls_min_days",
	NULL,
};
static const char *const agg_conf_tcp_keys[] = { "host", "port", NULL };
static const char *const agg_conf_dns_keys[] = { "name", "type", "server", "expect", NULL };
static const char *const agg_conf_icmp_keys[] = { "host", NULL };

// Keys of a target entry besides the probe kind's own.  Controls are probed
// by every agent and judged by no quorum, so they take fewer.
static const char *const agg_conf_target_keys[] = {
	"name",
	"group",
	"kind",
	"http",
	"tcp",
	"dns",
	"icmp",
	"interval",
	"timeout",
	"confirm",
	"retry_interval",
	"quorum",
	"recover",
	"regions",
	"min_voters",
	"distinct_domains",
	"recover_for",
	"confirm_span",
	"reopen_window",
	"settle_for",
	NULL,
};
static const char *const agg_conf_control_keys[] = {
	"name",
	"kind",
	"http",
	"tcp",
	"dns",
	"icmp",
	"interval",
	"timeout",
	"confirm",
	"retry_interval",
	NULL,
};

static const char *const agg_conf_dns_types[] = { "A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA",
	"SRV", "TXT", "CAA", NULL };

static const char *const agg_conf_roles[] = { "admin", "write", "read", NULL };

typedef int (*agg_conf_spec_fn)(const struct yconf_doc *doc, const struct yconf_node *map,
    struct target_conf *target);

static int agg_conf_http(const struct yconf_doc *doc, const struct yconf_node *map,
    struct target_conf *target);
static int agg_conf_tcp(const struct yconf_doc *doc, const struct yconf_node *map,
    struct target_conf *target);
static int agg_conf_dns(const struct yconf_doc *doc, const struct yconf_node *map,
    struct target_conf *target);
static int agg_conf_icmp(const struct yconf_doc *doc, const struct yconf_node *map,
    struct target_conf *target);

struct agg_conf_kind {
	const char *name;
	enum probe_kind kind;
	const char *const *keys;
	agg_conf_spec_fn parse;
	// The short form puts the spec keys beside the target's own; DNS's
	// "name" would collide with the target's, so DNS has no short form.
	bool short_form;
};

static const struct agg_conf_kind agg_conf_kinds[] = {
	{ "http", PROBE_HTTP, agg_conf_http_keys, agg_conf_http, true },
	{ "tcp", PROBE_TCP, agg_conf_tcp_keys, agg_conf_tcp, true },
	{ "dns", PROBE_DNS, agg_conf_dns_keys, agg_conf_dns, false },
	{ "icmp", PROBE_ICMP, agg_conf_icmp_keys, agg_conf_icmp, true },
};
#define AGG_CONF_N_KINDS (sizeof(agg_conf_kinds) / sizeof(agg_conf_kinds[0]))

static bool
agg_conf_in(const char *const *list, const char *word, bool nocase)
{
	for (; *list != NULL; list++)
		if ((nocase ? strcasecmp(*list, word) : strcmp(*list, word)) == 0)
			return true;
	return false;
}

static int
agg_conf_duration32(const struct yconf_doc *doc, const struct yconf_node *node, uint64_t min_ms,
    uint64_t max_ms, uint32_t *out)
{
	uint64_t ms;

	if (yconf_duration(doc, node, min_ms, max_ms, &ms) < 0)
		return -1;
	*out = (uint32_t)ms;
	return 0;
}

static int
agg_conf_uint32(const struct yconf_doc *doc, const struct yconf_node *node, unsigned min,
    unsigned max, uint32_t *out)
{
	unsigned value;

	if (yconf_uint(doc, node, min, max, &value) < 0)
		return -1;
	*out = value;
	return 0;
}

// A host name or address as probes will resolve it: printable, no spaces, no
// URL syntax, and short enough for DNS.
static int
agg_conf_host(const struct yconf_doc *doc, const struct yconf_node *node, char **out)
{
	char *host = NULL;
	size_t len;

	if (yconf_str(doc, node, &host) < 0)
		return -1;
	len = strlen(host);
	if (len > AGG_CONF_HOST_MAX || strcspn(host, " \t\r\n/\\\"'<>@") != len) {
		yconf_error(doc, node->line, "\"%s\" must be a host name or address, not \"%s\"",
		    node->name, host);
		free(host);
		return -1;
	}
	free(*out);
	*out = host;
	return 0;
}

static int
agg_conf_quorum(const struct yconf_doc *doc, const struct yconf_node *node,
    struct quorum_need *rule)
{
	const char *text;
	char *end;
	unsigned long value;

	if (node->kind != YCONF_SCALAR)
		goto bad;
	text = node->scalar;
	if (strcmp(text, "majority") == 0) {
		rule->mode = QUORUM_MAJORITY;
		rule->value = 0;
		return 0;
	}
	if (text[0] < '0' || text[0] > '9')
		goto bad;
	value = strtoul(text, &end, 10);
	if (strcmp(end, "%") == 0) {
		if (value < 1 || value > 100)
			return yconf_error(doc, node->line,
			    "\"%s\" percentage must be between 1%% and 100%%, "
			    "not %s",
			    node->name, text);
		rule->mode = QUORUM_PERCENT;
		rule->value = (unsigned)value;
		return 0;
	}
	if (*end != '\0')
		goto bad;
	if (value < 1 || value > AGG_CONF_QUORUM_MAX)
		return yconf_error(doc, node->line,
		    "\"%s\" must be between 1 and %u regions, not %s", node->name,
		    AGG_CONF_QUORUM_MAX, text);
	rule->mode = QUORUM_COUNT;
	rule->value = (unsigned)value;
	return 0;
bad:
	return yconf_error(doc, node->line,
	    "\"%s\" must be \"majority\", a number of regions or a percentage "
	    "such as \"60%%\", not %s%s%s",
	    node->name, node->kind == YCONF_SCALAR ? "\"" : "",
	    node->kind == YCONF_SCALAR ? node->scalar : "a collection",
	    node->kind == YCONF_SCALAR ? "\"" : "");
}

// The timing and voting keys shared by defaults: and every target, which
// starts from a copy of the defaults.
static int
agg_conf_timing(const struct yconf_doc *doc, const struct yconf_node *map,
    struct target_conf *target)
{
	const struct yconf_node *node;

	if ((node = yconf_get(map, "interval")) != NULL &&
	    agg_conf_duration32(doc, node, AGG_CONF_INTERVAL_MIN, MS_DAY, &target->interval_ms) < 0)
		return -1;
	if ((node = yconf_get(map, "timeout")) != NULL &&
	    agg_conf_duration32(doc, node, AGG_CONF_TIMEOUT_MIN, MS_DAY, &target->timeout_ms) < 0)
		return -1;
	if ((node = yconf_get(map, "retry_interval")) != NULL &&
	    agg_conf_duration32(doc, node, AGG_CONF_RETRY_MIN, MS_HOUR,
		&target->retry_interval_ms) < 0)
		return -1;
	if ((node = yconf_get(map, "confirm")) != NULL &&
	    agg_conf_uint32(doc, node, 1, AGG_CONF_CONFIRM_MAX, &target->confirm) < 0)
		return -1;
	if ((node = yconf_get(map, "quorum")) != NULL &&
	    agg_conf_quorum(doc, node, &target->quorum) < 0)
		return -1;
	if ((node = yconf_get(map, "recover")) != NULL &&
	    agg_conf_quorum(doc, node, &target->recover) < 0)
		return -1;
	if ((node = yconf_get(map, "min_voters")) != NULL &&
	    agg_conf_uint32(doc, node, 1, AGG_CONF_QUORUM_MAX, &target->min_voters) < 0)
		return -1;
	if ((node = yconf_get(map, "distinct_domains")) != NULL &&
	    agg_conf_uint32(doc, node, 1, AGG_CONF_QUORUM_MAX, &target->distinct_domains) < 0)
		return -1;
	if ((node = yconf_get(map, "recover_for")) != NULL &&
	    agg_conf_uint32(doc, node, 1, 100, &target->recover_for) < 0)
		return -1;
	if ((node = yconf_get(map, "confirm_span")) != NULL &&
	    agg_conf_duration32(doc, node, 0, MS_HOUR, &target->confirm_span_ms) < 0)
		return -1;
	if ((node = yconf_get(map, "reopen_window")) != NULL &&
	    agg_conf_duration32(doc, node, 0, MS_DAY, &target->reopen_window_ms) < 0)
		return -1;
	if ((node = yconf_get(map, "settle_for")) != NULL &&
	    agg_conf_duration32(doc, node, 0, MS_DAY, &target->settle_for_ms) < 0)
		return -1;
	return 0;
}

// The larger of floor and that many intervals, unless given.
static uint32_t
agg_conf_auto(uint32_t value, uint32_t floor_ms, uint32_t intervals, uint32_t interval_ms)
{
	uint64_t scaled = (uint64_t)intervals * interval_ms;

	if (value != CONF_AUTO)
		return value;
	if (scaled > MS_DAY)
		scaled = MS_DAY;
	return scaled > floor_ms ? (uint32_t)scaled : floor_ms;
}

static int
agg_conf_http_url(const struct yconf_doc *doc, const struct yconf_node *node, char **out)
{
	char *url = NULL;
	const char *rest;
	size_t len;

	if (yconf_str(doc, node, &url) < 0)
		return -1;
	len = strlen(url);
	if (strncmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		rest = url + 8;
	else
		rest = NULL;
	if (rest == NULL || rest[0] == '\0' || rest[0] == '/' || len > AGG_CONF_URL_MAX ||
	    strcspn(url, " \t\r\n") != len) {
		yconf_error(doc, node->line,
		    "\"url\" must be an http:// or https:// URL, not \"%s\"", url);
		free(url);
		return -1;
	}
	free(*out);
	*out = url;
	return 0;
}

static int
agg_conf_http_expect(const struct yconf_doc *doc, const struct yconf_node *node,
    struct http_spec *http)
{
	const struct yconf_node *const *items = &node;
	size_t count = 1, i;

	if (node->kind == YCONF_MAP)
		return yconf_expect_seq(doc, node);
	if (node->kind == YCONF_SEQ) {
		items = (const struct yconf_node *const *)node->items;
		count = node->n_items;
	}
	if (count > CONF_MAX_EXPECT)
		return yconf_error(doc, items[CONF_MAX_EXPECT]->line,
		    "\"expect_status\" has more than %d entries", CONF_MAX_EXPECT);
	for (i = 0; i < count; i++)
		if (agg_conf_uint32(doc, items[i], 100, 599, &http->expect_status[i]) < 0)
			return -1;
	http->n_expect = count;
	return 0;
}

static int
agg_conf_http(const struct yconf_doc *doc, const struct yconf_node *map, struct target_conf *target)
{
	struct http_spec *http = &target->http;
	const struct yconf_node *node;
	size_t len;

	if ((node = yconf_require(doc, map, "url")) == NULL ||
	    agg_conf_http_url(doc, node, &http->url) < 0)
		return -1;
	if ((node = yconf_get(map, "method")) != NULL) {
		len = node->kind == YCONF_SCALAR ? strlen(node->scalar) : 0;
		if (node->kind == YCONF_SCALAR &&
		    (len > AGG_CONF_METHOD_MAX ||
			strspn(node->scalar, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != len))
			return yconf_error(doc, node->line,
			    "\"method\" must be an HTTP method such as GET or HEAD, "
			    "not \"%s\"",
			    node->scalar);
		if (yconf_str(doc, node, &http->method) < 0)
			return -1;
	} else {
		http->method = xstrdup("GET");
	}
	if ((node = yconf_get(map, "expect_status")) != NULL &&
	    agg_conf_http_expect(doc, node, http) < 0)
		return -1;
	if ((node = yconf_get(map, "body_contains")) != NULL &&
	    yconf_str(doc, node, &http->body_contains) < 0)
		return -1;
	if ((node = yconf_get(map, "max_latency")) != NULL &&
	    agg_conf_duration32(doc, node, 1, MS_DAY, &http->max_latency_ms) < 0)
		return -1;
	if ((node = yconf_get(map, "follow_redirects")) != NULL &&
	    yconf_bool(doc, node, &http->follow_redirects) < 0)
		return -1;
	if ((node = yconf_get(map, "tls_min_days")) != NULL &&
	    agg_conf_uint32(doc, node, 0, AGG_CONF_TLS_DAYS_MAX, &http->tls_min_days) < 0)
		return -1;
	return 0;
}

static int
agg_conf_tcp(const struct yconf_doc *doc, const struct yconf_node *map, struct target_conf *target)
{
	const struct yconf_node *node;
	unsigned port;

	if ((node = yconf_require(doc, map, "host")) == NULL ||
	    agg_conf_host(doc, node, &target->tcp.host) < 0)
		return -1;
	if ((node = yconf_require(doc, map, "port")) == NULL ||
	    yconf_uint(doc, node, 1, 65535, &port) < 0)
		return -1;
	target->tcp.port = (uint16_t)port;
	return 0;
}

static int
agg_conf_dns(const struct yconf_doc *doc, const struct yconf_node *map, struct target_conf *target)
{
	struct dns_spec *dns = &target->dns;
	const struct yconf_node *node;
	char *p;

	if ((node = yconf_require(doc, map, "name")) == NULL ||
	    agg_conf_host(doc, node, &dns->name) < 0)
		return -1;
	if ((node = yconf_get(map, "type")) != NULL) {
		if (node->kind == YCONF_SCALAR &&
		    !agg_conf_in(agg_conf_dns_types, node->scalar, true))
			return yconf_error(doc, node->line,
			    "\"type\" must be a DNS record type such as A, AAAA, "
			    "CNAME, MX, NS, PTR, SOA, SRV, TXT or CAA, not \"%s\"",
			    node->scalar);
		if (yconf_str(doc, node, &dns->type) < 0)
			return -1;
		for (p = dns->type; *p != '\0'; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
	} else {
		dns->type = xstrdup("A");
	}
	if ((node = yconf_get(map, "server")) != NULL && agg_conf_host(doc, node, &dns->server) < 0)
		return -1;
	if ((node = yconf_get(map, "expect")) != NULL &&
	    yconf_str_list(doc, node, CONF_MAX_EXPECT, &dns->expect, &dns->n_expect) < 0)
		return -1;
	return 0;
}

static int
agg_conf_icmp(const struct yconf_doc *doc, const struct yconf_node *map, struct target_conf *target)
{
	const struct yconf_node *node;

	if ((node = yconf_require(doc, map, "host")) == NULL ||
	    agg_conf_host(doc, node, &target->icmp.host) < 0)
		return -1;
	return 0;
}

// Which probe kind an entry is, and the map holding its spec: the value of
// its "http:"/"tcp:"/... key (long form) or, with "kind:", the entry itself
// (short form, as in "{ url: ..., kind: http }").
static int
agg_conf_find_kind(const struct yconf_doc *doc, const struct yconf_node *map, const char *what,
    const struct agg_conf_kind **kind, const struct yconf_node **spec)
{
	const struct yconf_node *node, *kind_node, *found = NULL;
	size_t i;

	*kind = NULL;
	*spec = NULL;
	for (i = 0; i < AGG_CONF_N_KINDS; i++) {
		node = yconf_get(map, agg_conf_kinds[i].name);
		if (node == NULL)
			continue;
		if (*kind != NULL)
			return yconf_error(doc, node->line,
			    "%s has more than one probe kind (\"%s\" and \"%s\")", what,
			    (*kind)->name, agg_conf_kinds[i].name);
		*kind = &agg_conf_kinds[i];
		found = node;
	}
	kind_node = yconf_get(map, "kind");
	if (kind_node != NULL) {
		if (*kind != NULL)
			return yconf_error(doc, kind_node->line,
			    "%s has more than one probe kind (\"%s\" and \"kind\")", what,
			    (*kind)->name);
		if (kind_node->kind == YCONF_SCALAR)
			for (i = 0; i < AGG_CONF_N_KINDS; i++)
				if (strcmp(kind_node->scalar, agg_conf_kinds[i].name) == 0)
					*kind = &agg_conf_kinds[i];
		if (*kind == NULL || !(*kind)->short_form)
			return yconf_error(doc, kind_node->line,
			    "\"kind\" must be http, tcp or icmp (dns needs its own "
			    "\"dns:\" map)");
		*spec = map;
		return 0;
	}
	if (*kind == NULL)
		return yconf_error(doc, map->line,
		    "%s needs one of \"http\", \"tcp\", \"dns\" or \"icmp\"", what);
	if (yconf_expect_map(doc, found) < 0 || yconf_check_keys(doc, found, (*kind)->keys) < 0)
		return -1;
	*spec = found;
	return 0;
}

// The entry's own keys plus, in the short form, those of its probe kind.
static int
agg_conf_entry_keys(const struct yconf_doc *doc, const struct yconf_node *map,
    const char *const *own, const struct agg_conf_kind *kind, bool short_form)
{
	const char *allowed[32];
	size_t n = 0, i;

	for (i = 0; own[i] != NULL; i++)
		allowed[n++] = own[i];
	for (i = 0; short_form && kind->keys[i] != NULL; i++)
		allowed[n++] = kind->keys[i];
	allowed[n] = NULL;
	return yconf_check_keys(doc, map, allowed);
}

static int
agg_conf_target_regions(const struct yconf_doc *doc, const struct agg_conf *conf,
    const struct yconf_node *node, struct target_conf *target)
{
	struct yconf_named *names = NULL;
	const struct yconf_node *item;
	size_t i, j, first;
	long dup;

	if (yconf_expect_seq(doc, node) < 0)
		return -1;
	if (node->n_items == 0)
		return yconf_error(doc, node->line,
		    "\"regions\" must name at least one region (leave it out to "
		    "probe from all)");
	target->regions = xcalloc(node->n_items, sizeof(*target->regions));
	for (i = 0; i < node->n_items; i++) {
		item = node->items[i];
		if (yconf_ident(doc, item, AGG_CONF_REGION_MAX, &target->regions[i]) < 0)
			return -1;
		target->n_regions++;
		if (conf->n_regions == 0)
			continue;
		for (j = 0; j < conf->n_regions; j++)
			if (strcmp(conf->regions[j].name, item->scalar) == 0)
				break;
		if (j == conf->n_regions)
			return yconf_error(doc, item->line, "unknown region \"%s\"", item->scalar);
	}
	names = xcalloc(node->n_items, sizeof(*names));
	for (i = 0; i < node->n_items; i++) {
		names[i].name = node->items[i]->scalar;
		names[i].line = node->items[i]->line;
	}
	dup = yconf_find_duplicate(names, node->n_items, &first);
	free(names);
	if (dup >= 0)
		return yconf_error(doc, node->items[dup]->line, "region \"%s\" is listed twice",
		    node->items[dup]->scalar);
	return 0;
}

// A fixed quorum larger than the regions that probe a target could never be
// reached: the outage would go unreported.  Only checkable when the file
// lists its regions.
static int
agg_conf_check_quorum(const struct yconf_doc *doc, const struct agg_conf *conf,
    const struct yconf_node *map, const struct target_conf *target)
{
	static const char *const keys[] = { "quorum", "recover" };
	const struct quorum_need *rules[] = { &target->quorum, &target->recover };
	const struct yconf_node *node;
	size_t n = target->n_regions ? target->n_regions : conf->n_regions, i;

	if (conf->n_regions == 0)
		return 0;
	for (i = 0; i < 2; i++) {
		if (rules[i]->mode != QUORUM_COUNT || rules[i]->value <= n)
			continue;
		node = yconf_get(map, keys[i]);
		return yconf_error(doc, node != NULL ? node->line : map->line,
		    "%s %u is more than the %zu regions probing target \"%s\"", keys[i],
		    rules[i]->value, n, target->key);
	}
	return 0;
}

static void
agg_conf_target_clear(struct target_conf *target)
{
	size_t i;

	free(target->key);
	free(target->group);
	free(target->http.url);
	free(target->http.method);
	free(target->http.body_contains);
	free(target->tcp.host);
	free(target->dns.name);
	free(target->dns.type);
	free(target->dns.server);
	for (i = 0; i < target->dns.n_expect; i++)
		free(target->dns.expect[i]);
	free(target->dns.expect);
	free(target->icmp.host);
	for (i = 0; i < target->n_regions; i++)
		free(target->regions[i]);
	free(target->regions);
}

// One entry of targets: or controls:.  index (from 1) names unnamed
// controls "control-N".
static int
agg_conf_target(const struct yconf_doc *doc, const struct agg_conf *conf,
    const struct yconf_node *map, bool control, size_t index, struct target_conf *target)
{
	const struct agg_conf_kind *kind;
	const struct yconf_node *spec = NULL, *node;
	const char *what = control ? "control" : "target";
	char label[32];

	*target = conf->defaults;
	target->line = map->line;
	if (yconf_expect_map(doc, map) < 0)
		return -1;
	if ((node = control ? yconf_get(map, "name") : yconf_require(doc, map, "name")) != NULL) {
		if (yconf_ident(doc, node, AGG_CONF_TARGET_MAX, &target->key) < 0)
			return -1;
	} else if (control) {
		snprintf(label, sizeof(label), "control-%zu", index);
		target->key = xstrdup(label);
	} else {
		return -1;
	}
	if (agg_conf_find_kind(doc, map, what, &kind, &spec) < 0 ||
	    agg_conf_entry_keys(doc, map, control ? agg_conf_control_keys : agg_conf_target_keys,
		kind, spec == map) < 0)
		return -1;
	target->kind = kind->kind;
	if (kind->parse(doc, spec, target) < 0)
		return -1;
	if (!control && (node = yconf_get(map, "group")) != NULL &&
	    yconf_str(doc, node, &target->group) < 0)
		return -1;
	if (agg_conf_timing(doc, map, target) < 0)
		return -1;
	target->reopen_window_ms = agg_conf_auto(target->reopen_window_ms, 10 * MS_MINUTE, 10,
	    target->interval_ms);
	target->settle_for_ms = agg_conf_auto(target->settle_for_ms, MS_MINUTE, 2,
	    target->interval_ms);
	if (control)
		target->confirm_span_ms = 0; // a control's failures are the self-check's business
	if (!control && (node = yconf_get(map, "regions")) != NULL &&
	    agg_conf_target_regions(doc, conf, node, target) < 0)
		return -1;
	return control ? 0 : agg_conf_check_quorum(doc, conf, map, target);
}

// Parses every entry of a targets:/controls: sequence into a fresh array.
// The count is kept current so that agg_conf_free can clean up a failure
// halfway through.
static int
agg_conf_target_list(const struct yconf_doc *doc, struct agg_conf *conf,
    const struct yconf_node *seq, bool control, struct target_conf **out, size_t *n)
{
	size_t i;

	if (yconf_expect_seq(doc, seq) < 0)
		return -1;
	*out = xcalloc(seq->n_items, sizeof(**out));
	for (i = 0; i < seq->n_items; i++) {
		(*n)++;
		if (agg_conf_target(doc, conf, seq->items[i], control, i + 1, &(*out)[i]) < 0)
			return -1;
	}
	return 0;
}

// Results carry only the key, so controls and targets share one namespace.
static int
agg_conf_unique_keys(const struct yconf_doc *doc, const struct agg_conf *conf)
{
	struct yconf_named *names;
	size_t n = conf->n_controls + conf->n_targets, i, first;
	const struct target_conf *t;
	long dup;

	names = xcalloc(n, sizeof(*names));
	for (i = 0; i < n; i++) {
		if (i < conf->n_controls)
			t = &conf->controls[i];
		else
			t = &conf->targets[i - conf->n_controls];
		names[i].name = t->key;
		names[i].line = t->line;
	}
	dup = yconf_find_duplicate(names, n, &first);
	if (dup >= 0)
		yconf_error(doc, names[dup].line, "duplicate target name \"%s\" (first at line %d)",
		    names[dup].name, names[first].line);
	free(names);
	return dup >= 0 ? -1 : 0;
}

// Names (each the char * at name_off inside items[i] of size stride) must
// be unique; a repeat is reported at the line of the item that repeats.
static int
agg_conf_unique(const struct yconf_doc *doc, const struct yconf_node *seq, const void *items,
    size_t stride, size_t name_off, const char *what)
{
	struct yconf_named *names = xcalloc(seq->n_items, sizeof(*names));
	size_t first;
	long dup;

	for (size_t i = 0; i < seq->n_items; i++) {
		names[i].name = *(char *const *)((const char *)items + i * stride + name_off);
		names[i].line = seq->items[i]->line;
	}
	dup = yconf_find_duplicate(names, seq->n_items, &first);
	if (dup >= 0)
		yconf_error(doc, names[dup].line, "duplicate %s \"%s\" (first at line %d)", what,
		    names[dup].name, names[first].line);
	free(names);
	return dup >= 0 ? -1 : 0;
}

static int
agg_conf_regions(const struct yconf_doc *doc, struct agg_conf *conf, const struct yconf_node *seq)
{
	const struct yconf_node *map, *node;
	size_t i;

	if (yconf_expect_seq(doc, seq) < 0)
		return -1;
	conf->regions = xcalloc(seq->n_items, sizeof(*conf->regions));
	for (i = 0; i < seq->n_items; i++) {
		map = seq->items[i];
		conf->n_regions++;
		if (yconf_expect_map(doc, map) < 0 ||
		    yconf_check_keys(doc, map, agg_conf_region_keys) < 0)
			return -1;
		if ((node = yconf_require(doc, map, "name")) == NULL ||
		    yconf_ident(doc, node, AGG_CONF_REGION_MAX, &conf->regions[i].name) < 0)
			return -1;
		if ((node = yconf_get(map, "domain")) != NULL &&
		    yconf_ident(doc, node, AGG_CONF_REGION_MAX, &conf->regions[i].domain) < 0)
			return -1;
	}
	return agg_conf_unique(doc, seq, conf->regions, sizeof(*conf->regions),
	    offsetof(struct region_conf, name), "region");
}

static int
agg_conf_tokens(const struct yconf_doc *doc, struct agg_conf *conf, const struct yconf_node *seq)
{
	struct api_token_conf *token;
	const struct yconf_node *map, *node;
	size_t i;

	if (yconf_expect_seq(doc, seq) < 0)
		return -1;
	conf->tokens = xcalloc(seq->n_items, sizeof(*conf->tokens));
	for (i = 0; i < seq->n_items; i++) {
		map = seq->items[i];
		token = &conf->tokens[i];
		conf->n_tokens++;
		if (yconf_expect_map(doc, map) < 0 ||
		    yconf_check_keys(doc, map, agg_conf_token_keys) < 0)
			return -1;
		if ((node = yconf_require(doc, map, "name")) == NULL ||
		    yconf_ident(doc, node, AGG_CONF_REGION_MAX, &token->name) < 0)
			return -1;
		if ((node = yconf_require(doc, map, "token_file")) == NULL ||
		    yconf_path(doc, node, &token->token_file) < 0)
			return -1;
		if ((node = yconf_get(map, "role")) == NULL) {
			token->role = xstrdup("read");
		} else {
			if (node->kind == YCONF_SCALAR &&
			    !agg_conf_in(agg_conf_roles, node->scalar, false))
				return yconf_error(doc, node->line,
				    "\"role\" must be admin, write or read, "
				    "not \"%s\"",
				    node->scalar);
			if (yconf_str(doc, node, &token->role) < 0)
				return -1;
		}
	}
	return agg_conf_unique(doc, seq, conf->tokens, sizeof(*conf->tokens),
	    offsetof(struct api_token_conf, name), "api token");
}

static int
agg_conf_listen(const struct yconf_doc *doc, struct agg_conf *conf, const struct yconf_node *map)
{
	const struct yconf_node *node;

	if (yconf_expect_map(doc, map) < 0 || yconf_check_keys(doc, map, agg_conf_listen_keys) < 0)
		return -1;
	if ((node = yconf_get(map, "zmq")) != NULL &&
	    yconf_endpoint(doc, node, &conf->listen_zmq) < 0)
		return -1;
	if ((node = yconf_get(map, "http")) != NULL &&
	    yconf_hostport(doc, node, &conf->listen_http) < 0)
		return -1;
	return 0;
}

// CurveZMQ is on unless the file says "insecure: true"; without its keys the
// aggregator could admit no agent, so say so now rather than at bind time.
static int
agg_conf_security(const struct yconf_doc *doc, struct agg_conf *conf, const struct yconf_node *root)
{
	const struct yconf_node *map, *node;

	map = yconf_get(root, "security");
	if (map == NULL)
		return yconf_error(doc, root->line,
		    "missing required key \"security\" (CurveZMQ keys, or "
		    "\"insecure: true\" for development)");
	if (yconf_expect_map(doc, map) < 0 ||
	    yconf_check_keys(doc, map, agg_conf_security_keys) < 0)
		return -1;
	if ((node = yconf_get(map, "insecure")) != NULL &&
	    yconf_bool(doc, node, &conf->insecure) < 0)
		return -1;
	if ((node = yconf_get(map, "curve_secret_key")) != NULL &&
	    yconf_path(doc, node, &conf->curve_secret_key) < 0)
		return -1;
	if ((node = yconf_get(map, "agent_keys_dir")) != NULL &&
	    yconf_path(doc, node, &conf->agent_keys_dir) < 0)
		return -1;
	if (conf->insecure)
		return 0;
	if (yconf_require(doc, map, "curve_secret_key") == NULL ||
	    yconf_require(doc, map, "agent_keys_dir") == NULL)
		return -1;
	return 0;
}

static int
agg_conf_defaults(const struct yconf_doc *doc, struct agg_conf *conf, const struct yconf_node *root)
{
	const struct yconf_node *map;

	conf->defaults.interval_ms = 30 * MS_SECOND;
	conf->defaults.timeout_ms = 10 * MS_SECOND;
	conf->defaults.confirm = 2;
	conf->defaults.retry_interval_ms = MS_SECOND;
	conf->defaults.quorum.mode = QUORUM_MAJORITY;
	conf->defaults.recover.mode = QUORUM_MAJORITY;
	conf->defaults.recover_for = 2;
	conf->defaults.confirm_span_ms = 2 * MS_SECOND;
	conf->defaults.reopen_window_ms = CONF_AUTO;
	conf->defaults.settle_for_ms = CONF_AUTO;
	if ((map = yconf_get(root, "defaults")) == NULL)
		return 0;
	conf->defaults.line = map->line;
	if (yconf_expect_map(doc, map) < 0 ||
	    yconf_check_keys(doc, map, agg_conf_defaults_keys) < 0)
		return -1;
	return agg_conf_timing(doc, map, &conf->defaults);
}

// --- alerts: ---
//
// Channels only: which events a channel takes is checked here, where a
// typo can still name its line; which incidents produce those events is
// incident.c's business.

static const char *const agg_conf_alert_keys[] = { "name", "webhook", "exec", "on", "timeout",
	NULL };
static const char *const agg_conf_webhook_keys[] = { "url", "format", "routing_key", NULL };
static const char *const agg_conf_exec_keys[] = { "command", NULL };

static const struct {
	const char *name;
	unsigned bit;
} agg_conf_alert_events[] = {
	{ "outage", ALERT_ON_OUTAGE },
	{ "recovery", ALERT_ON_RECOVERY },
	{ "regional", ALERT_ON_REGIONAL },
	{ "blind", ALERT_ON_BLIND },
	{ "flapping", ALERT_ON_FLAPPING },
};
#define AGG_CONF_N_ALERT_EVENTS (sizeof(agg_conf_alert_events) / sizeof(agg_conf_alert_events[0]))

static const char *const agg_conf_alert_formats[] = { "json", "slack", "pagerduty", NULL };

// A non-empty string, checked where only its text is used.
static int
agg_conf_scalar(const struct yconf_doc *doc, const struct yconf_node *node)
{
	char *text = NULL;

	if (yconf_str(doc, node, &text) < 0)
		return -1;
	free(text);
	return 0;
}

static void
agg_conf_alert_clear(struct alert_conf *ch)
{
	free(ch->name);
	free(ch->url);
	free(ch->routing_key);
	for (size_t i = 0; ch->argv != NULL && ch->argv[i] != NULL; i++)
		free(ch->argv[i]);
	free(ch->argv);
}

static int
agg_conf_webhook(const struct yconf_doc *doc, const struct yconf_node *map, struct alert_conf *ch)
{
	const struct yconf_node *node, *key_node;
	size_t i;

	if (yconf_expect_map(doc, map) < 0 || yconf_check_keys(doc, map, agg_conf_webhook_keys) < 0)
		return -1;
	if ((node = yconf_require(doc, map, "url")) == NULL ||
	    agg_conf_http_url(doc, node, &ch->url) < 0)
		return -1;
	ch->format = ALERT_FORMAT_JSON;
	if ((node = yconf_get(map, "format")) != NULL) {
		if (agg_conf_scalar(doc, node) < 0)
			return -1;
		for (i = 0; agg_conf_alert_formats[i] != NULL; i++)
			if (strcmp(node->scalar, agg_conf_alert_formats[i]) == 0)
				break;
		if (agg_conf_alert_formats[i] == NULL)
			return yconf_error(doc, node->line,
			    "\"format\" must be json, slack or pagerduty, not \"%s\"",
			    node->scalar);
		ch->format = (enum alert_format)i;
	}
	key_node = yconf_get(map, "routing_key");
	if (key_node != NULL && ch->format != ALERT_FORMAT_PAGERDUTY)
		return yconf_error(doc, key_node->line,
		    "\"routing_key\" is only used with \"format: pagerduty\"");
	if (ch->format != ALERT_FORMAT_PAGERDUTY)
		return 0;
	if (key_node == NULL)
		return yconf_error(doc, map->line,
		    "missing required key \"routing_key\" in \"webhook\" (the "
		    "PagerDuty integration key, needed by \"format: pagerduty\")");
	return yconf_str(doc, key_node, &ch->routing_key);
}

// One word of a command, with the same rule for both spellings: printable,
// no spaces (a sequence item may hold spaces; it is one argument anyway).
static int
agg_conf_exec_word(const struct yconf_doc *doc, const struct yconf_node *node, const char *word,
    size_t len, bool allow_space)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)word[i];

		if (c < 0x20 || c == 0x7f || (c == ' ' && !allow_space))
			return yconf_error(doc, node->line,
			    "\"command\" must not contain control characters");
	}
	return 0;
}

// command: "/path arg1 arg2" is split on spaces and run without a shell,
// so quoting means nothing; a sequence gives arguments that hold spaces.
static int
agg_conf_exec(const struct yconf_doc *doc, const struct yconf_node *map, struct alert_conf *ch)
{
	const struct yconf_node *node, *item;
	const char *text, *p;
	size_t n = 0, len, i;

	if (yconf_expect_map(doc, map) < 0 || yconf_check_keys(doc, map, agg_conf_exec_keys) < 0)
		return -1;
	if ((node = yconf_require(doc, map, "command")) == NULL)
		return -1;
	if (node->kind == YCONF_SEQ) {
		if (node->n_items == 0 || node->n_items > AGG_CONF_EXEC_ARGS_MAX)
			return yconf_error(doc, node->line,
			    "\"command\" must have 1 to %d words, not %zu", AGG_CONF_EXEC_ARGS_MAX,
			    node->n_items);
		ch->argv = xcalloc(node->n_items + 1, sizeof(*ch->argv));
		for (i = 0; i < node->n_items; i++) {
			item = node->items[i];
			if (yconf_str(doc, item, &ch->argv[i]) < 0 ||
			    agg_conf_exec_word(doc, item, item->scalar, strlen(item->scalar),
				i > 0) < 0)
				return -1;
		}
	} else {
		if (agg_conf_scalar(doc, node) < 0)
			return -1;
		text = node->scalar;
		if (strlen(text) > AGG_CONF_EXEC_MAX)
			return yconf_error(doc, node->line,
			    "\"command\" must be at most %d characters", AGG_CONF_EXEC_MAX);
		if (agg_conf_exec_word(doc, node, text, strlen(text), true) < 0)
			return -1;
		ch->argv = xcalloc(AGG_CONF_EXEC_ARGS_MAX + 1, sizeof(*ch->argv));
		for (p = text; *p != '\0';) {
			p += strspn(p, " ");
			len = strcspn(p, " ");
			if (len == 0)
				break;
			if (n == AGG_CONF_EXEC_ARGS_MAX)
				return yconf_error(doc, node->line,
				    "\"command\" has more than %d words", AGG_CONF_EXEC_ARGS_MAX);
			ch->argv[n++] = xstrndup(p, len);
			p += len;
		}
		if (n == 0)
			return yconf_error(doc, node->line, "\"command\" must not be empty");
	}
	if (ch->argv[0][0] != '/')
		return yconf_error(doc, node->line,
		    "\"command\" must start with the absolute path of a program "
		    "(it runs without a shell and without PATH), not \"%s\"",
		    ch->argv[0]);
	ch->is_exec = true;
	return 0;
}

static int
agg_conf_alert_on(const struct yconf_doc *doc, const struct yconf_node *node, unsigned *events)
{
	const struct yconf_node *const *items = &node;
	const struct yconf_node *item;
	size_t count = 1, i, j;

	if (node->kind == YCONF_MAP)
		return yconf_expect_seq(doc, node);
	if (node->kind == YCONF_SEQ) {
		items = (const struct yconf_node *const *)node->items;
		count = node->n_items;
	}
	if (count == 0)
		return yconf_error(doc, node->line,
		    "\"on\" must name at least one event (leave it out for the "
		    "default: outage, recovery, blind, flapping)");
	*events = 0;
	for (i = 0; i < count; i++) {
		item = items[i];
		if (agg_conf_scalar(doc, item) < 0)
			return -1;
		for (j = 0; j < AGG_CONF_N_ALERT_EVENTS; j++)
			if (strcmp(item->scalar, agg_conf_alert_events[j].name) == 0)
				break;
		if (j == AGG_CONF_N_ALERT_EVENTS)
			return yconf_error(doc, item->line,
			    "unknown alert event \"%s\" (outage, recovery, regional, "
			    "blind or flapping)",
			    item->scalar);
		if (*events & agg_conf_alert_events[j].bit)
			return yconf_error(doc, item->line, "event \"%s\" is listed twice",
			    item->scalar);
		*events |= agg_conf_alert_events[j].bit;
	}
	return 0;
}

static int
agg_conf_alert(const struct yconf_doc *doc, const struct yconf_node *map, struct alert_conf *ch)
{
	const struct yconf_node *node, *webhook, *exec;

	ch->line = map->line;
	ch->events = ALERT_ON_OUTAGE | ALERT_ON_RECOVERY | ALERT_ON_BLIND | ALERT_ON_FLAPPING;
	ch->timeout_ms = 10 * MS_SECOND;
	if (yconf_expect_map(doc, map) < 0 || yconf_check_keys(doc, map, agg_conf_alert_keys) < 0)
		return -1;
	if ((node = yconf_require(doc, map, "name")) == NULL ||
	    yconf_ident(doc, node, AGG_CONF_ALERT_NAME_MAX, &ch->name) < 0)
		return -1;
	webhook = yconf_get(map, "webhook");
	exec = yconf_get(map, "exec");
	if (webhook != NULL && exec != NULL)
		return yconf_error(doc, webhook->line > exec->line ? webhook->line : exec->line,
		    "alert channel \"%s\" has both \"webhook\" and \"exec\"; "
		    "give one per channel",
		    ch->name);
	if (webhook == NULL && exec == NULL)
		return yconf_error(doc, map->line,
		    "alert channel \"%s\" needs \"webhook\" or \"exec\"", ch->name);
	if (webhook != NULL ? agg_conf_webhook(doc, webhook, ch) < 0 :
			      agg_conf_exec(doc, exec, ch) < 0)
		return -1;
	if ((node = yconf_get(map, "on")) != NULL && agg_conf_alert_on(doc, node, &ch->events) < 0)
		return -1;
	if ((node = yconf_get(map, "timeout")) != NULL &&
	    agg_conf_duration32(doc, node, MS_SECOND, AGG_CONF_ALERT_TIMEOUT_MAX, &ch->timeout_ms) <
		0)
		return -1;
	return 0;
}

static int
agg_conf_alerts(const struct yconf_doc *doc, struct agg_conf *conf, const struct yconf_node *seq)
{
	size_t i;

	if (yconf_expect_seq(doc, seq) < 0)
		return -1;
	conf->alerts = xcalloc(seq->n_items, sizeof(*conf->alerts));
	for (i = 0; i < seq->n_items; i++) {
		conf->n_alerts++;
		if (agg_conf_alert(doc, seq->items[i], &conf->alerts[i]) < 0)
			return -1;
	}
	return agg_conf_unique(doc, seq, conf->alerts, sizeof(*conf->alerts),
	    offsetof(struct alert_conf, name), "alert channel");
}

// status_page: belongs to a module not written yet; its shape is checked
// so that a typo at the top level is still caught.
static int
agg_conf_reserved(const struct yconf_doc *doc, const struct yconf_node *root)
{
	const struct yconf_node *node;

	if ((node = yconf_get(root, "status_page")) != NULL && yconf_expect_map(doc, node) < 0)
		return -1;
	return 0;
}

static const char *const agg_conf_retention_keys[] = { "raw", "rollup", NULL };

// Raw results are kept at least 2 days so that the minute rollups, which
// read them, have run over every minute before its partition goes; the
// rollups outlive the raw rows they were made from.
static int
agg_conf_retention(const struct yconf_doc *doc, struct agg_conf *conf,
    const struct yconf_node *root)
{
	const struct yconf_node *map, *raw, *rollup;

	conf->retention_raw_ms = AGG_CONF_RAW_DEFAULT;
	conf->retention_rollup_ms = AGG_CONF_ROLLUP_DEFAULT;
	if ((map = yconf_get(root, "retention")) == NULL)
		return 0;
	if (yconf_expect_map(doc, map) < 0 ||
	    yconf_check_keys(doc, map, agg_conf_retention_keys) < 0)
		return -1;
	if ((raw = yconf_get(map, "raw")) != NULL &&
	    yconf_duration(doc, raw, AGG_CONF_RAW_MIN, AGG_CONF_RETENTION_MAX,
		&conf->retention_raw_ms) < 0)
		return -1;
	if ((rollup = yconf_get(map, "rollup")) != NULL &&
	    yconf_duration(doc, rollup, AGG_CONF_RAW_MIN, AGG_CONF_RETENTION_MAX,
		&conf->retention_rollup_ms) < 0)
		return -1;
	if (conf->retention_rollup_ms < conf->retention_raw_ms)
		return yconf_error(doc, rollup != NULL ? rollup->line : raw->line,
		    "\"retention.rollup\" (%s) must be at least \"retention.raw\" (%s): rollups "
		    "are made from raw results",
		    rollup != NULL ? rollup->scalar : "400d", raw != NULL ? raw->scalar : "30d");
	return 0;
}

static int
agg_conf_parse(const struct yconf_doc *doc, struct agg_conf *conf)
{
	const struct yconf_node *root = doc->root, *node;

	if (yconf_expect_map(doc, root) < 0 || yconf_check_keys(doc, root, agg_conf_keys) < 0)
		return -1;
	if ((node = yconf_get(root, "listen")) != NULL && agg_conf_listen(doc, conf, node) < 0)
		return -1;
	if ((node = yconf_get(root, "database")) != NULL &&
	    yconf_str(doc, node, &conf->database) < 0)
		return -1;
	if ((node = yconf_get(root, "state_dir")) != NULL &&
	    yconf_path(doc, node, &conf->state_dir) < 0)
		return -1;
	if (agg_conf_security(doc, conf, root) < 0)
		return -1;
	if ((node = yconf_get(root, "api_tokens")) != NULL && agg_conf_tokens(doc, conf, node) < 0)
		return -1;
	if ((node = yconf_get(root, "regions")) != NULL && agg_conf_regions(doc, conf, node) < 0)
		return -1;
	if (agg_conf_defaults(doc, conf, root) < 0)
		return -1;
	if ((node = yconf_get(root, "controls")) != NULL &&
	    agg_conf_target_list(doc, conf, node, true, &conf->controls, &conf->n_controls) < 0)
		return -1;
	if ((node = yconf_get(root, "targets")) != NULL &&
	    agg_conf_target_list(doc, conf, node, false, &conf->targets, &conf->n_targets) < 0)
		return -1;
	if (agg_conf_unique_keys(doc, conf) < 0)
		return -1;
	if ((node = yconf_get(root, "alerts")) != NULL && agg_conf_alerts(doc, conf, node) < 0)
		return -1;
	if (agg_conf_retention(doc, conf, root) < 0)
		return -1;
	return agg_conf_reserved(doc, root);
}

struct agg_conf *
agg_conf_load(const char *path, char *err, size_t errlen)
{
	struct yconf_doc *doc;
	struct agg_conf *conf;

	doc = yconf_load(path, err, errlen);
	if (doc == NULL)
		return NULL;
	conf = xcalloc(1, sizeof(*conf));
	conf->path = xstrdup(path);
	conf->listen_zmq = xstrdup("tcp://127.0.0.1:7500");
	conf->listen_http = xstrdup("127.0.0.1:8080");
	conf->state_dir = xstrdup("/var/lib/vantage");
	if (agg_conf_parse(doc, conf) < 0) {
		agg_conf_free(conf);
		conf = NULL;
	}
	yconf_free(doc);
	return conf;
}

void
agg_conf_free(struct agg_conf *conf)
{
	size_t i;

	if (conf == NULL)
		return;
	free(conf->path);
	free(conf->listen_zmq);
	free(conf->listen_http);
	free(conf->database);
	free(conf->state_dir);
	free(conf->curve_secret_key);
	free(conf->agent_keys_dir);
	for (i = 0; i < conf->n_tokens; i++) {
		free(conf->tokens[i].name);
		free(conf->tokens[i].token_file);
		free(conf->tokens[i].role);
	}
	free(conf->tokens);
	for (i = 0; i < conf->n_regions; i++) {
		free(conf->regions[i].name);
		free(conf->regions[i].domain);
	}
	free(conf->regions);
	for (i = 0; i < conf->n_controls; i++)
		agg_conf_target_clear(&conf->controls[i]);
	free(conf->controls);
	for (i = 0; i < conf->n_targets; i++)
		agg_conf_target_clear(&conf->targets[i]);
	free(conf->targets);
	for (i = 0; i < conf->n_alerts; i++)
		agg_conf_alert_clear(&conf->alerts[i]);
	free(conf->alerts);
	free(conf);
}

int
agg_conf_target_index(const struct agg_conf *conf, const char *key)
{
	size_t i;

	for (i = 0; i < conf->n_targets; i++)
		if (strcmp(conf->targets[i].key, key) == 0)
			return (int)i;
	return -1;
}
