// SPDX-License-Identifier: Apache-2.0
//
// YAML configuration loader and typed accessors; see yconf.h.  The tree is
// built from libyaml's event stream rather than yaml_document_t so that depth
// and size limits bite while parsing, before a hostile file has cost memory,
// and so that line numbers come straight from each event's start mark.
// Nothing else in the project may include yaml.h.
#include "yconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "buf.h"
#include "xmalloc.h"

#define MS_PER_SECOND UINT64_C(1000)
#define MS_PER_MINUTE (60 * MS_PER_SECOND)
#define MS_PER_HOUR (60 * MS_PER_MINUTE)
#define MS_PER_DAY (24 * MS_PER_HOUR)

// State while turning events into a tree.  Only the container on top of the
// stack can be waiting for a value, so one pending key is enough.
struct yconf_builder {
	struct yconf_doc *doc;
	struct yconf_node *stack[YCONF_MAX_DEPTH];
	size_t depth;
	char *pending_key; // owned until it moves into a pair
	int pending_line;
	size_t n_nodes;
	bool seen_document;
};

int
yconf_error(const struct yconf_doc *doc, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (doc->err == NULL || doc->errlen == 0)
		return -1;
	n = snprintf(doc->err, doc->errlen, "%s:%d: ", doc->path, line);
	if (n < 0 || (size_t)n >= doc->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(doc->err + n, doc->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static void
yconf_node_free(struct yconf_node *node)
{
	size_t i;

	if (node == NULL)
		return;
	free(node->scalar);
	for (i = 0; i < node->n_pairs; i++) {
		free(node->pairs[i].key);
		yconf_node_free(node->pairs[i].value);
	}
	free(node->pairs);
	for (i = 0; i < node->n_items; i++)
		yconf_node_free(node->items[i]);
	free(node->items);
	free(node);
}

void
yconf_free(struct yconf_doc *doc)
{
	if (doc == NULL)
		return;
	yconf_node_free(doc->root);
	free(doc->path);
	free(doc);
}

static const char *
yconf_kind_name(enum yconf_kind kind)
{
	switch (kind) {
	case YCONF_SCALAR:
		return "a string";
	case YCONF_MAP:
		return "a map";
	case YCONF_SEQ:
		return "a sequence";
	}
	return "?";
}

// Reads the whole file, refusing more than YCONF_MAX_BYTES whatever the file
// claims to be (a FIFO or /dev/zero has no size to check up front).
static int
yconf_read(struct yconf_doc *doc, struct buf *contents)
{
	unsigned char chunk[65536];
	struct stat st;
	ssize_t got;
	int fd;

	fd = open(doc->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return yconf_error(doc, 1, "could not open file: %s", strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > YCONF_MAX_BYTES) {
		close(fd);
		return yconf_error(doc, 1, "file is too large (%jd bytes, at most %u allowed)",
		    (intmax_t)st.st_size, YCONF_MAX_BYTES);
	}
	for (;;) {
		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			yconf_error(doc, 1, "could not read file: %s", strerror(errno));
			close(fd);
			return -1;
		}
		if (got == 0)
			break;
		if (contents->len + (size_t)got > YCONF_MAX_BYTES) {
			close(fd);
			return yconf_error(doc, 1, "file is too large (more than %u bytes)",
			    YCONF_MAX_BYTES);
		}
		buf_append(contents, chunk, (size_t)got);
	}
	close(fd);
	return 0;
}

static int
yconf_mark_line(const yaml_mark_t *mark)
{
	return mark->line >= (size_t)INT32_MAX ? INT32_MAX : (int)mark->line + 1;
}

// libyaml's reader errors carry a byte offset but no line.
static int
yconf_offset_line(const struct buf *contents, size_t offset)
{
	size_t i;
	int line = 1;

	for (i = 0; i < offset && i < contents->len; i++)
		if (contents->data[i] == '\n')
			line++;
	return line;
}

static int
yconf_syntax_error(struct yconf_doc *doc, const yaml_parser_t *parser, const struct buf *contents)
{
	const char *problem = parser->problem ? parser->problem : "unknown error";

	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		return yconf_error(doc, 1, "out of memory while parsing YAML");
	case YAML_READER_ERROR:
		return yconf_error(doc, yconf_offset_line(contents, parser->problem_offset),
		    "invalid YAML: %s", problem);
	default:
		break;
	}
	if (parser->context != NULL)
		return yconf_error(doc, yconf_mark_line(&parser->problem_mark),
		    "invalid YAML: %s (%s at line %d)", problem, parser->context,
		    yconf_mark_line(&parser->context_mark));
	return yconf_error(doc, yconf_mark_line(&parser->problem_mark), "invalid YAML: %s",
	    problem);
}

// Grows an array whose capacity is implied by its count: it doubles whenever
// the count reaches a power of two, so no capacity field is needed.
static void *
yconf_grow(void *array, size_t count, size_t size)
{
	if (count == 0)
		return xreallocarray(array, 1, size);
	if ((count & (count - 1)) == 0)
		return xreallocarray(array, count * 2, size);
	return array;
}

static int
yconf_named_cmp(const void *a, const void *b)
{
	const struct yconf_named *x = *(const struct yconf_named *const *)a;
	const struct yconf_named *y = *(const struct yconf_named *const *)b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	// Same line (a flow map): file order, since qsort is not stable.
	return (x > y) - (x < y);
}

// Sorting instead of comparing every pair keeps a huge map or target list
// from costing quadratic time.
long
yconf_find_duplicate(const struct yconf_named *entries, size_t n, size_t *first)
{
	const struct yconf_named **sorted;
	const struct yconf_named *orig = NULL, *dup = NULL;
	size_t i;

	if (n < 2)
		return -1;
	sorted = xreallocarray(NULL, n, sizeof(*sorted));
	for (i = 0; i < n; i++)
		sorted[i] = &entries[i];
	qsort(sorted, n, sizeof(*sorted), yconf_named_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(sorted[i - 1]->name, sorted[i]->name) != 0)
			continue;
		if (dup == NULL || yconf_named_cmp(&sorted[i], &dup) < 0) {
			orig = sorted[i - 1];
			dup = sorted[i];
		}
		// Later repeats of the same name come after this one.
		while (i + 1 < n && strcmp(sorted[i]->name, sorted[i + 1]->name) == 0)
			i++;
	}
	free(sorted);
	if (dup == NULL)
		return -1;
	*first = (size_t)(orig - entries);
	return (long)(dup - entries);
}

static int
yconf_check_duplicates(struct yconf_doc *doc, const struct yconf_node *map)
{
	struct yconf_named *keys;
	size_t i, first;
	long dup;

	if (map->n_pairs < 2)
		return 0;
	keys = xreallocarray(NULL, map->n_pairs, sizeof(*keys));
	for (i = 0; i < map->n_pairs; i++) {
		keys[i].name = map->pairs[i].key;
		keys[i].line = map->pairs[i].line;
	}
	dup = yconf_find_duplicate(keys, map->n_pairs, &first);
	free(keys);
	if (dup < 0)
		return 0;
	if (map->name != NULL)
		return yconf_error(doc, map->pairs[dup].line,
		    "duplicate key \"%s\" in \"%s\" (first at line %d)", map->pairs[dup].key,
		    map->name, map->pairs[first].line);
	return yconf_error(doc, map->pairs[dup].line, "duplicate key \"%s\" (first at line %d)",
	    map->pairs[dup].key, map->pairs[first].line);
}

// Hangs node under the container on top of the stack.  Takes ownership of
// node whatever happens.
static int
yconf_attach(struct yconf_builder *b, struct yconf_node *node)
{
	struct yconf_node *top;
	struct yconf_pair *pair;

	if (b->depth == 0) {
		b->doc->root = node;
		return 0;
	}
	top = b->stack[b->depth - 1];
	if (top->kind == YCONF_SEQ) {
		top->items = yconf_grow(top->items, top->n_items, sizeof(*top->items));
		top->items[top->n_items++] = node;
		node->name = top->name;
		return 0;
	}
	if (b->pending_key == NULL) {
		if (node->kind != YCONF_SCALAR) {
			int line = node->line;

			yconf_node_free(node);
			return yconf_error(b->doc, line, "map keys must be strings");
		}
		b->pending_key = node->scalar;
		b->pending_line = node->line;
		node->scalar = NULL;
		yconf_node_free(node);
		return 0;
	}
	top->pairs = yconf_grow(top->pairs, top->n_pairs, sizeof(*top->pairs));
	pair = &top->pairs[top->n_pairs++];
	pair->key = b->pending_key;
	pair->line = b->pending_line;
	pair->value = node;
	node->name = pair->key;
	b->pending_key = NULL;
	return 0;
}

static struct yconf_node *
yconf_node_new(struct yconf_builder *b, enum yconf_kind kind, const yaml_event_t *event)
{
	struct yconf_node *node;

	if (b->n_nodes >= YCONF_MAX_NODES) {
		yconf_error(b->doc, yconf_mark_line(&event->start_mark),
		    "too many YAML nodes (at most %d allowed)", YCONF_MAX_NODES);
		return NULL;
	}
	b->n_nodes++;
	node = xcalloc(1, sizeof(*node));
	node->kind = kind;
	node->line = yconf_mark_line(&event->start_mark);
	return node;
}

static int
yconf_scalar(struct yconf_builder *b, const yaml_event_t *event)
{
	const char *text = (const char *)event->data.scalar.value;
	size_t len = event->data.scalar.length;
	struct yconf_node *node;

	// A double-quoted "\0" would silently cut every C string built from it.
	if (memchr(text, '\0', len) != NULL)
		return yconf_error(b->doc, yconf_mark_line(&event->start_mark),
		    "NUL character in string");
	node = yconf_node_new(b, YCONF_SCALAR, event);
	if (node == NULL)
		return -1;
	node->scalar = xstrndup(text, len);
	node->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	return yconf_attach(b, node);
}

static int
yconf_start(struct yconf_builder *b, enum yconf_kind kind, const yaml_event_t *event)
{
	struct yconf_node *node;

	if (b->depth == YCONF_MAX_DEPTH)
		return yconf_error(b->doc, yconf_mark_line(&event->start_mark),
		    "nesting is too deep (at most %d levels allowed)", YCONF_MAX_DEPTH);
	node = yconf_node_new(b, kind, event);
	if (node == NULL)
		return -1;
	if (yconf_attach(b, node) < 0)
		return -1;
	b->stack[b->depth++] = node;
	return 0;
}

static int
yconf_event(struct yconf_builder *b, const yaml_event_t *event)
{
	struct yconf_node *top;

	switch (event->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->seen_document)
			return yconf_error(b->doc, yconf_mark_line(&event->start_mark),
			    "more than one YAML document in file");
		b->seen_document = true;
		return 0;
	case YAML_ALIAS_EVENT:
		// Refused rather than expanded: expansion is how a few lines of
		// YAML become gigabytes ("billion laughs").
		return yconf_error(b->doc, yconf_mark_line(&event->start_mark),
		    "YAML aliases are not supported");
	case YAML_SCALAR_EVENT:
		return yconf_scalar(b, event);
	case YAML_MAPPING_START_EVENT:
		return yconf_start(b, YCONF_MAP, event);
	case YAML_SEQUENCE_START_EVENT:
		return yconf_start(b, YCONF_SEQ, event);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		top = b->stack[--b->depth];
		return top->kind == YCONF_MAP ? yconf_check_duplicates(b->doc, top) : 0;
	default:
		return 0;
	}
}

static int
yconf_parse(struct yconf_doc *doc, const struct buf *contents)
{
	struct yconf_builder b = { .doc = doc };
	const unsigned char *input = contents->len ? contents->data : (const unsigned char *)"";
	yaml_parser_t parser;
	yaml_event_t event;
	yaml_event_type_t type;
	int rc = 0;

	if (!yaml_parser_initialize(&parser))
		return yconf_error(doc, 1, "could not initialize the YAML parser");
	// libyaml asserts on a NULL input, which an empty file leaves us.
	yaml_parser_set_input_string(&parser, input, contents->len);
	do {
		if (!yaml_parser_parse(&parser, &event)) {
			rc = yconf_syntax_error(doc, &parser, contents);
			break;
		}
		type = event.type;
		rc = yconf_event(&b, &event);
		yaml_event_delete(&event);
	} while (rc == 0 && type != YAML_STREAM_END_EVENT);
	yaml_parser_delete(&parser);
	free(b.pending_key);
	return rc;
}

struct yconf_doc *
yconf_load(const char *path, char *err, size_t errlen)
{
	struct yconf_doc *doc = xcalloc(1, sizeof(*doc));
	struct buf contents;

	doc->path = xstrdup(path);
	doc->err = err;
	doc->errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	buf_init(&contents);
	if (yconf_read(doc, &contents) < 0 || yconf_parse(doc, &contents) < 0)
		goto fail;
	buf_free(&contents);
	if (doc->root == NULL || yconf_is_null(doc->root)) {
		yconf_node_free(doc->root);
		doc->root = xcalloc(1, sizeof(*doc->root));
		doc->root->kind = YCONF_MAP;
		doc->root->line = 1;
	}
	return doc;
fail:
	buf_free(&contents);
	yconf_free(doc);
	return NULL;
}

bool
yconf_is_null(const struct yconf_node *node)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	size_t i;

	if (node == NULL || node->kind != YCONF_SCALAR || !node->plain)
		return false;
	for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(node->scalar, nulls[i]) == 0)
			return true;
	return false;
}

const struct yconf_node *
yconf_get(const struct yconf_node *map, const char *key)
{
	size_t i;

	if (map == NULL || map->kind != YCONF_MAP)
		return NULL;
	for (i = 0; i < map->n_pairs; i++)
		if (strcmp(map->pairs[i].key, key) == 0)
			return yconf_is_null(map->pairs[i].value) ? NULL : map->pairs[i].value;
	return NULL;
}

const struct yconf_node *
yconf_require(const struct yconf_doc *doc, const struct yconf_node *map, const char *key)
{
	const struct yconf_node *value = yconf_get(map, key);

	if (value != NULL)
		return value;
	if (map->name != NULL)
		yconf_error(doc, map->line, "missing required key \"%s\" in \"%s\"", key,
		    map->name);
	else
		yconf_error(doc, map->line, "missing required key \"%s\"", key);
	return NULL;
}

int
yconf_check_keys(const struct yconf_doc *doc, const struct yconf_node *map,
    const char *const *allowed)
{
	const struct yconf_pair *pair;
	const char *const *a;
	size_t i;

	for (i = 0; i < map->n_pairs; i++) {
		pair = &map->pairs[i];
		for (a = allowed; *a != NULL; a++)
			if (strcmp(*a, pair->key) == 0)
				break;
		if (*a != NULL)
			continue;
		if (map->name != NULL)
			return yconf_error(doc, pair->line, "unknown key \"%s\" in \"%s\"",
			    pair->key, map->name);
		return yconf_error(doc, pair->line, "unknown key \"%s\"", pair->key);
	}
	return 0;
}

static int
yconf_expect(const struct yconf_doc *doc, const struct yconf_node *node, enum yconf_kind kind)
{
	if (node->kind == kind)
		return 0;
	if (node->name == NULL)
		return yconf_error(doc, node->line, "the top level must be %s, not %s",
		    yconf_kind_name(kind), yconf_kind_name(node->kind));
	return yconf_error(doc, node->line, "\"%s\" must be %s, not %s", node->name,
	    yconf_kind_name(kind), yconf_kind_name(node->kind));
}

int
yconf_expect_map(const struct yconf_doc *doc, const struct yconf_node *node)
{
	return yconf_expect(doc, node, YCONF_MAP);
}

int
yconf_expect_seq(const struct yconf_doc *doc, const struct yconf_node *node)
{
	return yconf_expect(doc, node, YCONF_SEQ);
}

static const char *
yconf_name(const struct yconf_node *node)
{
	return node->name != NULL ? node->name : "value";
}

int
yconf_str(const struct yconf_doc *doc, const struct yconf_node *node, char **out)
{
	if (yconf_expect(doc, node, YCONF_SCALAR) < 0)
		return -1;
	if (node->scalar[0] == '\0' || yconf_is_null(node))
		return yconf_error(doc, node->line, "\"%s\" must not be empty", yconf_name(node));
	free(*out);
	*out = xstrdup(node->scalar);
	return 0;
}

int
yconf_bool(const struct yconf_doc *doc, const struct yconf_node *node, bool *out)
{
	if (yconf_expect(doc, node, YCONF_SCALAR) < 0)
		return -1;
	if (strcasecmp(node->scalar, "true") == 0 || strcasecmp(node->scalar, "yes") == 0) {
		*out = true;
		return 0;
	}
	if (strcasecmp(node->scalar, "false") == 0 || strcasecmp(node->scalar, "no") == 0) {
		*out = false;
		return 0;
	}
	return yconf_error(doc, node->line, "\"%s\" must be true or false, not \"%s\"",
	    yconf_name(node), node->scalar);
}

// Strict decimal: no sign, no spaces, no hex, nothing after the digits but
// what the caller accepts as a unit.  Returns the first byte after the
// digits, or NULL on no digits or overflow.
static const char *
yconf_parse_digits(const char *text, uint64_t *out)
{
	uint64_t value = 0;
	const char *p;

	for (p = text; *p >= '0' && *p <= '9'; p++) {
		if (value > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return NULL;
		value = value * 10 + (uint64_t)(*p - '0');
	}
	if (p == text)
		return NULL;
	*out = value;
	return p;
}

int
yconf_uint(const struct yconf_doc *doc, const struct yconf_node *node, unsigned min, unsigned max,
    unsigned *out)
{
	const char *end;
	uint64_t value;

	if (yconf_expect(doc, node, YCONF_SCALAR) < 0)
		return -1;
	end = yconf_parse_digits(node->scalar, &value);
	if (end == NULL || *end != '\0')
		return yconf_error(doc, node->line,
		    "\"%s\" must be an unsigned integer, not \"%s\"", yconf_name(node),
		    node->scalar);
	if (value < min || value > max)
		return yconf_error(doc, node->line, "\"%s\" must be between %u and %u, not %s",
		    yconf_name(node), min, max, node->scalar);
	*out = (unsigned)value;
	return 0;
}

// Multiplies with an overflow check; the unit tables hold no zeros.
static int
yconf_scale(uint64_t value, uint64_t unit, uint64_t *out)
{
	if (value > UINT64_MAX / unit)
		return -1;
	*out = value * unit;
	return 0;
}

int
yconf_parse_duration(const char *text, uint64_t *out_ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
		{ "", MS_PER_SECOND },
		{ "ms", 1 },
		{ "s", MS_PER_SECOND },
		{ "m", MS_PER_MINUTE },
		{ "h", MS_PER_HOUR },
		{ "d", MS_PER_DAY },
	};
	const char *end;
	uint64_t value;
	size_t i;

	end = yconf_parse_digits(text, &value);
	if (end == NULL)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].suffix) == 0)
			return yconf_scale(value, units[i].ms, out_ms);
	return -1;
}

int
yconf_parse_size(const char *text, uint64_t *out_bytes)
{
	static const struct {
		const char *suffix;
		uint64_t bytes;
	} units[] = {
		{ "", 1 },
		{ "B", 1 },
		{ "KB", UINT64_C(1000) },
		{ "MB", UINT64_C(1000000) },
		{ "GB", UINT64_C(1000000000) },
		{ "TB", UINT64_C(1000000000000) },
		{ "KiB", UINT64_C(1) << 10 },
		{ "MiB", UINT64_C(1) << 20 },
		{ "GiB", UINT64_C(1) << 30 },
		{ "TiB", UINT64_C(1) << 40 },
	};
	const char *end;
	uint64_t value;
	size_t i;

	end = yconf_parse_digits(text, &value);
	if (end == NULL)
		return -1;
	// Case-insensitive so "kB" and "mb" work; the "i" alone picks binary.
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcasecmp(end, units[i].suffix) == 0)
			return yconf_scale(value, units[i].bytes, out_bytes);
	return -1;
}

// Writes ms in the largest unit that represents it exactly, so a range
// message reads "between 100ms and 1d" rather than in raw milliseconds.
static void
yconf_format_duration(uint64_t ms, char *out, size_t outlen)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
		{ "d", MS_PER_DAY },
		{ "h", MS_PER_HOUR },
		{ "m", MS_PER_MINUTE },
		{ "s", MS_PER_SECOND },
		{ "ms", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ms != 0 && ms % units[i].ms == 0)
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		i--;
	snprintf(out, outlen, "%" PRIu64 "%s", ms / units[i].ms, units[i].suffix);
}

int
yconf_duration(const struct yconf_doc *doc, const struct yconf_node *node, uint64_t min_ms,
    uint64_t max_ms, uint64_t *out_ms)
{
	char lo[32], hi[32];
	uint64_t value;

	if (yconf_expect(doc, node, YCONF_SCALAR) < 0)
		return -1;
	if (yconf_parse_duration(node->scalar, &value) < 0)
		return yconf_error(doc, node->line,
		    "\"%s\" must be a duration such as 500ms, 30s, 2m, 1h or 1d, "
		    "not \"%s\"",
		    yconf_name(node), node->scalar);
	if (value < min_ms || value > max_ms) {
		yconf_format_duration(min_ms, lo, sizeof(lo));
		yconf_format_duration(max_ms, hi, sizeof(hi));
		return yconf_error(doc, node->line, "\"%s\" must be between %s and %s, not %s",
		    yconf_name(node), lo, hi, node->scalar);
	}
	*out_ms = value;
	return 0;
}

int
yconf_size(const struct yconf_doc *doc, const struct yconf_node *node, uint64_t min, uint64_t max,
    uint64_t *out)
{
	uint64_t value;

	if (yconf_expect(doc, node, YCONF_SCALAR) < 0)
		return -1;
	if (yconf_parse_size(node->scalar, &value) < 0)
		return yconf_error(doc, node->line,
		    "\"%s\" must be a size such as 1000, 512KiB, 256MiB or 1GB, "
		    "not \"%s\"",
		    yconf_name(node), node->scalar);
	if (value < min || value > max)
		return yconf_error(doc, node->line,
		    "\"%s\" must be between %" PRIu64 " and %" PRIu64 " bytes, not %s",
		    yconf_name(node), min, max, node->scalar);
	*out = value;
	return 0;
}

int
yconf_str_list(const struct yconf_doc *doc, const struct yconf_node *node, size_t max, char ***out,
    size_t *n)
{
	const struct yconf_node *const *items = &node;
	char **list;
	size_t count = 1, i;

	if (node->kind == YCONF_MAP)
		return yconf_expect_seq(doc, node);
	if (node->kind == YCONF_SEQ) {
		items = (const struct yconf_node *const *)node->items;
		count = node->n_items;
	}
	if (count > max)
		return yconf_error(doc, items[max]->line, "\"%s\" has more than %zu entries",
		    yconf_name(node), max);
	list = xcalloc(count, sizeof(*list));
	for (i = 0; i < count; i++) {
		if (yconf_str(doc, items[i], &list[i]) < 0)
			goto fail;
	}
	for (i = 0; i < *n; i++)
		free((*out)[i]);
	free(*out);
	*out = list;
	*n = count;
	return 0;
fail:
	for (i = 0; i < count; i++)
		free(list[i]);
	free(list);
	return -1;
}

static bool
yconf_printable(const char *text)
{
	const unsigned char *p;

	for (p = (const unsigned char *)text; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

int
yconf_ident(const struct yconf_doc *doc, const struct yconf_node *node, size_t maxlen, char **out)
{
	size_t len;

	if (yconf_expect(doc, node, YCONF_SCALAR) < 0)
		return -1;
	len = strlen(node->scalar);
	if (len < 1 || len > maxlen ||
	    strspn(node->scalar,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789._-") != len)
		return yconf_error(doc, node->line,
		    "\"%s\" must be 1 to %zu characters from A-Z, a-z, 0-9, \".\", "
		    "\"_\" and \"-\", not \"%s\"",
		    yconf_name(node), maxlen, node->scalar);
	return yconf_str(doc, node, out);
}

static bool
yconf_hostport_ok(const char *text)
{
	const char *colon = strrchr(text, ':');
	const char *end;
	uint64_t port;

	if (colon == NULL || colon == text || !yconf_printable(text))
		return false;
	end = yconf_parse_digits(colon + 1, &port);
	if (end == NULL || *end != '\0' || port < 1 || port > 65535)
		return false;
	if (text[0] == '[')
		return colon - text > 2 && colon[-1] == ']';
	// An IPv6 address without brackets cannot be told from its port.
	return memchr(text, ':', (size_t)(colon - text)) == NULL;
}

int
yconf_hostport(const struct yconf_doc *doc, const struct yconf_node *node, char **out)
{
	if (yconf_expect(doc, node, YCONF_SCALAR) < 0)
		return -1;
	if (!yconf_hostport_ok(node->scalar))
		return yconf_error(doc, node->line, "\"%s\" must be \"HOST:PORT\", not \"%s\"",
		    yconf_name(node), node->scalar);
	return yconf_str(doc, node, out);
}

int
yconf_endpoint(const struct yconf_doc *doc, const struct yconf_node *node, char **out)
{
	const char *text;
	bool ok;

	if (yconf_expect(doc, node, YCONF_SCALAR) < 0)
		return -1;
	text = node->scalar;
	if (strncmp(text, "tcp://", 6) == 0)
		ok = yconf_hostport_ok(text + 6);
	else if (strncmp(text, "ipc://", 6) == 0)
		ok = text[6] != '\0' && yconf_printable(text + 6);
	else
		ok = false;
	if (!ok)
		return yconf_error(doc, node->line,
		    "\"%s\" must be \"tcp://HOST:PORT\" or \"ipc://PATH\", "
		    "not \"%s\"",
		    yconf_name(node), text);
	return yconf_str(doc, node, out);
}

int
yconf_path(const struct yconf_doc *doc, const struct yconf_node *node, char **out)
{
	const char *slash = strrchr(doc->path, '/');
	char *value = NULL, *dir, *resolved, *joined;
	size_t len;

	if (yconf_str(doc, node, &value) < 0)
		return -1;
	if (value[0] == '/') {
		free(*out);
		*out = value;
		return 0;
	}
	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == doc->path)
		dir = xstrdup("/");
	else
		dir = xstrndup(doc->path, (size_t)(slash - doc->path));
	// Absolute, so that a later chdir("/") by the daemon changes nothing.
	resolved = realpath(dir, NULL);
	if (resolved != NULL) {
		free(dir);
		dir = resolved;
	}
	len = strlen(dir) + 1 + strlen(value) + 1;
	joined = xmalloc(len);
	snprintf(joined, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", value);
	free(dir);
	free(value);
	free(*out);
	*out = joined;
	return 0;
}
