// SPDX-License-Identifier: Apache-2.0
//
// agent.yml: builds a struct agent_conf from the YAML tree of common/yconf,
// filling defaults and checking every value before the agent touches the
// network or the spool.  It never opens the key files it names: whether they
// are readable is for the agent to find out when it uses them, with its own
// privileges at that time.
#include "agent_conf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "xmalloc.h"
#include "yconf.h"

#define AGENT_CONF_NAME_MAX 64
#define AGENT_CONF_SPOOL_DIR "/var/lib/vantage-agent"
#define AGENT_CONF_SPOOL_MAX (UINT64_C(256) << 20)
// Smaller than this, the spool would be a single segment (spool.c), and
// dropping its oldest part would mean dropping everything.
#define AGENT_CONF_SPOOL_MIN (UINT64_C(256) << 10)
#define AGENT_CONF_CONCURRENCY 256u
#define AGENT_CONF_CONCURRENCY_MAX 65536u

static const char *const agent_conf_keys[] = {
	"name",
	"region",
	"aggregator",
	"secret_key",
	"insecure",
	"spool_dir",
	"spool_max",
	"spool_fsync",
	"max_concurrency",
	"source_ip",
	NULL,
};

static const char *const agent_conf_aggregator_keys[] = { "endpoint", "public_key", NULL };

static int
agent_conf_source_ip(const struct yconf_doc *doc, const struct yconf_node *node, char **out)
{
	struct in6_addr addr;

	if (yconf_str(doc, node, out) < 0)
		return -1;
	if (inet_pton(AF_INET, *out, &addr) != 1 && inet_pton(AF_INET6, *out, &addr) != 1)
		return yconf_error(doc, node->line,
		    "\"source_ip\" must be an IPv4 or IPv6 address, not \"%s\"", *out);
	return 0;
}

// CurveZMQ is on unless the file says otherwise, and without both keys the
// agent could never complete a handshake: better to fail at "-n" time.
static int
agent_conf_check_keys(const struct yconf_doc *doc, const struct yconf_node *root,
    const struct yconf_node *aggregator, const struct agent_conf *conf)
{
	if (conf->insecure)
		return 0;
	if (conf->secret_key == NULL)
		return yconf_error(doc, root->line,
		    "missing required key \"secret_key\" (required unless "
		    "\"insecure\" is true)");
	if (conf->aggregator_public_key == NULL)
		return yconf_error(doc, aggregator->line,
		    "missing required key \"public_key\" in \"aggregator\" "
		    "(required unless \"insecure\" is true)");
	return 0;
}

static int
agent_conf_parse_aggregator(const struct yconf_doc *doc, const struct yconf_node *map,
    struct agent_conf *conf)
{
	const struct yconf_node *node;

	if (yconf_expect_map(doc, map) < 0 ||
	    yconf_check_keys(doc, map, agent_conf_aggregator_keys) < 0)
		return -1;
	if ((node = yconf_require(doc, map, "endpoint")) == NULL ||
	    yconf_endpoint(doc, node, &conf->aggregator_endpoint) < 0)
		return -1;
	if ((node = yconf_get(map, "public_key")) != NULL &&
	    yconf_path(doc, node, &conf->aggregator_public_key) < 0)
		return -1;
	return 0;
}

static int
agent_conf_parse(const struct yconf_doc *doc, struct agent_conf *conf)
{
	const struct yconf_node *root = doc->root, *aggregator, *node;
	unsigned concurrency;

	if (yconf_expect_map(doc, root) < 0 || yconf_check_keys(doc, root, agent_conf_keys) < 0)
		return -1;
	if ((node = yconf_require(doc, root, "name")) == NULL ||
	    yconf_ident(doc, node, AGENT_CONF_NAME_MAX, &conf->name) < 0)
		return -1;
	if ((node = yconf_require(doc, root, "region")) == NULL ||
	    yconf_ident(doc, node, AGENT_CONF_NAME_MAX, &conf->region) < 0)
		return -1;
	if ((aggregator = yconf_require(doc, root, "aggregator")) == NULL ||
	    agent_conf_parse_aggregator(doc, aggregator, conf) < 0)
		return -1;
	if ((node = yconf_get(root, "secret_key")) != NULL &&
	    yconf_path(doc, node, &conf->secret_key) < 0)
		return -1;
	if ((node = yconf_get(root, "insecure")) != NULL &&
	    yconf_bool(doc, node, &conf->insecure) < 0)
		return -1;
	if ((node = yconf_get(root, "spool_dir")) != NULL &&
	    yconf_path(doc, node, &conf->spool_dir) < 0)
		return -1;
	if ((node = yconf_get(root, "spool_max")) != NULL &&
	    yconf_size(doc, node, AGENT_CONF_SPOOL_MIN, UINT64_MAX, &conf->spool_max) < 0)
		return -1;
	if ((node = yconf_get(root, "spool_fsync")) != NULL &&
	    yconf_bool(doc, node, &conf->spool_fsync) < 0)
		return -1;
	if ((node = yconf_get(root, "max_concurrency")) != NULL) {
		if (yconf_uint(doc, node, 1, AGENT_CONF_CONCURRENCY_MAX, &concurrency) < 0)
			return -1;
		conf->max_concurrency = concurrency;
	}
	if ((node = yconf_get(root, "source_ip")) != NULL &&
	    agent_conf_source_ip(doc, node, &conf->source_ip) < 0)
		return -1;
	return agent_conf_check_keys(doc, root, aggregator, conf);
}

struct agent_conf *
agent_conf_load(const char *path, char *err, size_t errlen)
{
	struct yconf_doc *doc;
	struct agent_conf *conf;

	doc = yconf_load(path, err, errlen);
	if (doc == NULL)
		return NULL;
	conf = xcalloc(1, sizeof(*conf));
	conf->path = xstrdup(path);
	conf->spool_dir = xstrdup(AGENT_CONF_SPOOL_DIR);
	conf->spool_max = AGENT_CONF_SPOOL_MAX;
	conf->spool_fsync = true;
	conf->max_concurrency = AGENT_CONF_CONCURRENCY;
	if (agent_conf_parse(doc, conf) < 0) {
		agent_conf_free(conf);
		conf = NULL;
	}
	yconf_free(doc);
	return conf;
}

void
agent_conf_free(struct agent_conf *conf)
{
	if (conf == NULL)
		return;
	free(conf->path);
	free(conf->name);
	free(conf->region);
	free(conf->aggregator_endpoint);
	free(conf->aggregator_public_key);
	free(conf->secret_key);
	free(conf->spool_dir);
	free(conf->source_ip);
	free(conf);
}
