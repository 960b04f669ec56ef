// SPDX-License-Identifier: Apache-2.0
//
// A YAML configuration file loaded into a small tree of scalars, maps and
// sequences that remembers the line of every node, plus typed accessors that
// report errors as "FILE:LINE: message".  This is the only module that
// includes yaml.h (DESIGN.md §1); agent/agent_conf.c and aggregator/agg_conf.c build
// their structs from the tree.  It must never trust the file: input is capped
// at YCONF_MAX_BYTES, nesting at YCONF_MAX_DEPTH and the tree at
// YCONF_MAX_NODES; aliases, duplicate keys, non-scalar keys and NUL bytes in
// strings are refused.
//
// Errors: every function that can fail writes one "PATH:LINE: message" into
// the err buffer given to yconf_load (it stays borrowed for the life of the
// doc) and returns -1 or NULL.  Messages are in PostgreSQL style: lower case,
// no trailing period, names in double quotes.
#ifndef VANTAGE_YCONF_H
#define VANTAGE_YCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define YCONF_MAX_BYTES (4u * 1024 * 1024)
#define YCONF_MAX_DEPTH 32
#define YCONF_MAX_NODES 262144

enum yconf_kind { YCONF_SCALAR, YCONF_MAP, YCONF_SEQ };

struct yconf_node;

struct yconf_pair {
	char *key;
	int line; // of the key
	struct yconf_node *value;
};

struct yconf_node {
	enum yconf_kind kind;
	int line; // 1-based line where the node starts
	// The key this node is the value of; for sequence items, the key of the
	// sequence.  NULL at the top level.  Used to name things in messages.
	const char *name;
	char *scalar;             // YCONF_SCALAR: the text, with no NUL inside
	bool plain;               // YCONF_SCALAR: unquoted, so "", "~" and "null" mean null
	struct yconf_pair *pairs; // YCONF_MAP, in file order
	size_t n_pairs;
	struct yconf_node **items; // YCONF_SEQ
	size_t n_items;
};

struct yconf_doc {
	char *path;
	// Never NULL: an empty file (or one holding only comments or a null)
	// reads as an empty map at line 1, so "missing key" errors need no
	// special case.
	struct yconf_node *root;
	char *err;
	size_t errlen;
};

// Reads and parses path.  err (borrowed; must outlive the doc) receives this
// and every later error about the doc.  Returns an owned doc (yconf_free) or
// NULL with err set.
struct yconf_doc *yconf_load(const char *path, char *err, size_t errlen);
void yconf_free(struct yconf_doc *doc);

// Writes "PATH:LINE: message" to doc->err and returns -1, so that callers can
// write `return yconf_error(...)`.
int yconf_error(const struct yconf_doc *doc, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// A plain "", "~", "null", "Null" or "NULL": YAML's spellings of nothing.
bool yconf_is_null(const struct yconf_node *node);

// The value of key in map, or NULL if map has no such key or its value is
// null ("key:" alone means the same as leaving the key out).  Borrowed.
const struct yconf_node *yconf_get(const struct yconf_node *map, const char *key);
// Like yconf_get, but a missing key is an error reported at the map's line.
const struct yconf_node *yconf_require(const struct yconf_doc *doc, const struct yconf_node *map,
    const char *key);

// Fails on the first key of map not in allowed (NULL-terminated).
int yconf_check_keys(const struct yconf_doc *doc, const struct yconf_node *map,
    const char *const *allowed);
// Fail unless node is a map / a sequence.
int yconf_expect_map(const struct yconf_doc *doc, const struct yconf_node *node);
int yconf_expect_seq(const struct yconf_doc *doc, const struct yconf_node *node);

// Typed parsers.  Each checks that node is a scalar of the right form and
// range, then stores into *out; on error *out is left unchanged.
//
// yconf_str replaces *out with an owned copy (freeing the old value); the
// empty string is refused, since no key this project reads means anything
// by it.
int yconf_str(const struct yconf_doc *doc, const struct yconf_node *node, char **out);
// true, false, yes, no (any case).
int yconf_bool(const struct yconf_doc *doc, const struct yconf_node *node, bool *out);
// Decimal, min <= value <= max.
int yconf_uint(const struct yconf_doc *doc, const struct yconf_node *node, unsigned min,
    unsigned max, unsigned *out);
// Milliseconds from "500ms", "30s", "2m", "1h", "1d" or a bare number of
// seconds; min_ms <= value <= max_ms.
int yconf_duration(const struct yconf_doc *doc, const struct yconf_node *node, uint64_t min_ms,
    uint64_t max_ms, uint64_t *out_ms);
// Bytes from "1000", "512KiB", "256MiB", "1GiB", "1TiB" (powers of 1024) or
// "KB", "MB", "GB", "TB" (powers of 1000); min <= value <= max.
int yconf_size(const struct yconf_doc *doc, const struct yconf_node *node, uint64_t min,
    uint64_t max, uint64_t *out);
// A sequence of at most max non-empty strings, or a single string standing
// for a sequence of one.  *out is replaced by an owned array of owned strings
// (free each, then the array); *n receives the count.
int yconf_str_list(const struct yconf_doc *doc, const struct yconf_node *node, size_t max,
    char ***out, size_t *n);

// Shared shapes of strings, so that both config files check them alike.
//
// A name of 1..maxlen bytes from [A-Za-z0-9._-] (agent, region, target).
int yconf_ident(const struct yconf_doc *doc, const struct yconf_node *node, size_t maxlen,
    char **out);
// "HOST:PORT" with a port in 1..65535; HOST may be "[v6addr]" or "*".
int yconf_hostport(const struct yconf_doc *doc, const struct yconf_node *node, char **out);
// A ZeroMQ endpoint: "tcp://HOST:PORT" or "ipc://PATH".
int yconf_endpoint(const struct yconf_doc *doc, const struct yconf_node *node, char **out);
// A file or directory name.  A relative one is made relative to the
// directory holding the config file, not to the working directory, which a
// daemon changes.
int yconf_path(const struct yconf_doc *doc, const struct yconf_node *node, char **out);

// Finds the earliest repeated name among n entries: returns the index of the
// repeat (by line, the second occurrence that comes first in the file) and
// sets *first to the index of the occurrence it repeats, or returns -1.
struct yconf_named {
	const char *name;
	int line;
};
long yconf_find_duplicate(const struct yconf_named *entries, size_t n, size_t *first);

// The text parsers behind yconf_duration and yconf_size, without messages
// (for tests and fuzzing).  Return 0 or -1 on bad syntax or overflow.
int yconf_parse_duration(const char *text, uint64_t *out_ms);
int yconf_parse_size(const char *text, uint64_t *out_bytes);

#endif
