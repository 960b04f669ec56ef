// SPDX-License-Identifier: Apache-2.0
//
// The aggregator's ZAP handler (ZeroMQ RFC 27): every CurveZMQ handshake on
// the ingest socket asks it whether the client's public key may connect.
// It admits a key only if a file DIR/NAME.pub in agent_keys_dir holds it,
// and answers User-Id = NAME, which ingest takes as the agent's name (never
// the Hello's).  It must be bound before the ROUTER binds: a handshake that
// finds no handler would be admitted without a check.  It runs on the one
// libevent loop through common/zloop and never blocks.
//
// Keys: read at start; a key not found is looked up again in the directory
// (when the directory changed, or at most four times a second) so that a
// new agent's file works without a reload; removing or replacing a file
// takes effect on zap_reload (SIGHUP), which reports how many keys it
// revoked so that their connections can be dropped.  Refusals (unknown or revoked key, and the handshake failures
// ingest reports) are counted, and logged once per peer address and reason
// per ZAP_LOG_INTERVAL_S.
#ifndef VANTAGE_ZAP_H
#define VANTAGE_ZAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#define ZAP_DOMAIN "vantage"
#define ZAP_LOG_INTERVAL_S 600

struct zap_stats {
	uint64_t admitted;            // handshakes with a known key
	uint64_t refused_unknown_key; // key in no file of agent_keys_dir
	uint64_t refused_revoked_key; // key whose file was removed (then SIGHUP)
	uint64_t refused_mechanism;   // a ZAP request for another mechanism than CURVE
	uint64_t refused_plaintext;   // client without CurveZMQ (reported by ingest)
	uint64_t refused_handshake;   // other broken handshakes (reported by ingest)
	uint64_t keys;                // keys admitted now
};

enum zap_refusal {
	ZAP_REFUSED_PLAINTEXT, // the client named another mechanism, or hung up in the greeting
	ZAP_REFUSED_HANDSHAKE, // any other protocol error in the handshake
};

struct zap;

// Binds the ZAP endpoint of zctx and loads keys_dir.  base, zctx borrowed.
// Returns NULL after logging why (directory unreadable, endpoint taken).
struct zap *zap_new(struct event_base *base, void *zctx, const char *keys_dir);
// Rereads keys_dir (possibly a new path) and replaces the key set.  Returns
// the number of keys revoked (admitted before, not any more), or -1 when
// the directory cannot be read (the old keys stay).
int zap_reload(struct zap *z, const char *keys_dir);
// A handshake ingest saw fail before ZAP was asked; addr is the peer's IP
// address or "unknown".  Counted and logged like the handler's refusals.
void zap_refused(struct zap *z, const char *addr, enum zap_refusal why);
// Whether agent name has an admitted key now.
bool zap_admits(const struct zap *z, const char *name);
void zap_get_stats(const struct zap *z, struct zap_stats *out);
// Accepts NULL.
void zap_free(struct zap *z);

#endif
