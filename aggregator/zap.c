// SPDX-License-Identifier: Apache-2.0
//
// ZAP handler; see zap.h.  A request is (version, request id, domain,
// address, routing id, mechanism, credentials...), a reply (version,
// request id, status code, status text, user id, metadata).  The REP
// socket must answer every request it receives, even a malformed one, or
// it cannot receive the next: every path through zap_on_msg sends a reply.
// The key set is small (one key per agent) and searched linearly; a
// handshake is rare next to the results an agent then sends.
#include "zap.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "curvekey.h"
#include "log.h"
#include "wire.h"
#include "xmalloc.h"
#include "zloop.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_RESCAN_US 250000 // a missing key re-reads the directory at most this often
#define ZAP_PEERS 128        // peer addresses whose refusals are rate-limited
#define ZAP_MAX_REVOKED 4096 // revoked keys remembered to say "revoked"
#define ZAP_MSG_FRAMES 6

struct zap_key {
	char name[WIRE_MAX_NAME + 1];
	uint8_t key[CURVEKEY_BIN_LEN];
};

struct zap_keys {
	struct zap_key *v;
	size_t n;
};

// Why a connection was refused: each is logged once per peer address, so
// that one host with two problems shows both.
enum zap_why {
	ZAP_WHY_UNKNOWN,
	ZAP_WHY_REVOKED,
	ZAP_WHY_MECHANISM,
	ZAP_WHY_PLAINTEXT,
	ZAP_WHY_HANDSHAKE
};

// One (peer address, reason) whose refusals are being logged.
struct zap_peer {
	char addr[64];
	enum zap_why why;
	int64_t logged_mono;   // 0: slot free
	uint64_t since_logged; // refusals not logged since then
};

struct zap {
	void *sock;
	struct zloop *z;
	char *dir;
	struct zap_keys keys;
	struct zap_keys revoked;
	int64_t scanned_mono;
	struct timespec scanned_mtime; // of the directory, at the last scan
	struct zap_peer peers[ZAP_PEERS];
	struct zap_stats stats;
};

static void
zap_keys_add(struct zap_keys *ks, const char *name, const uint8_t *key)
{
	ks->v = xreallocarray(ks->v, ks->n + 1, sizeof(*ks->v));
	snprintf(ks->v[ks->n].name, sizeof(ks->v[ks->n].name), "%s", name);
	memcpy(ks->v[ks->n].key, key, CURVEKEY_BIN_LEN);
	ks->n++;
}

static const struct zap_key *
zap_keys_find(const struct zap_keys *ks, const uint8_t *key)
{
	for (size_t i = 0; i < ks->n; i++)
		if (memcmp(ks->v[i].key, key, CURVEKEY_BIN_LEN) == 0)
			return &ks->v[i];
	return NULL;
}

// Reads every DIR/NAME.pub into out.  Files that are no valid key, or whose
// NAME is no valid agent name, or that repeat a key, are skipped, with a
// warning unless quiet.  Returns -1 if the directory cannot be read.
static int
zap_scan(const char *dir, bool quiet, struct zap_keys *out)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	out->v = NULL;
	out->n = 0;
	if (d == NULL) {
		log_warn("could not read agent keys directory \"%s\"", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char name[WIRE_MAX_NAME + 1], path[4096], err[4200];
		struct curvekey k;
		uint8_t bin[CURVEKEY_BIN_LEN];

		if (len <= 4 || strcmp(de->d_name + len - 4, ".pub") != 0 || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (len - 4 > WIRE_MAX_NAME) {
			if (!quiet)
				log_warnx(
				    "ignoring key file \"%s\": its name is too long for an agent "
				    "name",
				    path);
			continue;
		}
		memcpy(name, de->d_name, len - 4);
		name[len - 4] = '\0';
		if (!wire_name_ok(name, WIRE_MAX_NAME)) {
			if (!quiet)
				log_warnx(
				    "ignoring key file \"%s\": \"%s\" is not a valid agent name",
				    path, name);
			continue;
		}
		if (curvekey_read_public(path, &k, err, sizeof(err)) < 0) {
			if (!quiet)
				log_warnx("ignoring agent key: %s", err);
			continue;
		}
		curvekey_binary(&k, bin);
		if (zap_keys_find(out, bin) != NULL) {
			if (!quiet)
				log_warnx("ignoring key file \"%s\": agent \"%s\" has the same key",
				    path, zap_keys_find(out, bin)->name);
			continue;
		}
		zap_keys_add(out, name, bin);
	}
	closedir(d);
	return 0;
}

// The rate limit: true if this refusal from addr is to be logged, with
// *suppressed set to the refusals from there not logged since the last.
static bool
zap_should_log(struct zap *z, const char *addr, enum zap_why why, uint64_t *suppressed)
{
	int64_t now = clock_mono_us();
	struct zap_peer *p = NULL, *oldest = &z->peers[0];

	for (size_t i = 0; i < ZAP_PEERS; i++) {
		struct zap_peer *q = &z->peers[i];

		if (q->logged_mono != 0 && q->why == why && strcmp(q->addr, addr) == 0) {
			p = q;
			break;
		}
		if (q->logged_mono < oldest->logged_mono)
			oldest = q;
	}
	if (p != NULL && now - p->logged_mono < (int64_t)ZAP_LOG_INTERVAL_S * 1000000) {
		p->since_logged++;
		return false;
	}
	if (p == NULL) {
		p = oldest;
		p->since_logged = 0;
		p->why = why;
		snprintf(p->addr, sizeof(p->addr), "%s", addr);
	}
	*suppressed = p->since_logged;
	p->since_logged = 0;
	p->logged_mono = now;
	return true;
}

static void
zap_log_refusal(struct zap *z, const char *addr, enum zap_why category, const char *why)
{
	uint64_t suppressed = 0;

	if (!zap_should_log(z, addr, category, &suppressed))
		return;
	if (suppressed > 0)
		log_warnx(
		    "refused an agent connection from %s: %s (and %llu more such refusals "
		    "from there since the last message; next message in %d s at the earliest)",
		    addr, why, (unsigned long long)suppressed, ZAP_LOG_INTERVAL_S);
	else
		log_warnx("refused an agent connection from %s: %s (further such refusals from "
			  "there are counted, and logged again after %d s)",
		    addr, why, ZAP_LOG_INTERVAL_S);
}

void
zap_refused(struct zap *z, const char *addr, enum zap_refusal why)
{
	if (why == ZAP_REFUSED_PLAINTEXT) {
		z->stats.refused_plaintext++;
		zap_log_refusal(z, addr, ZAP_WHY_PLAINTEXT,
		    "the client does not use CurveZMQ (an agent with "
		    "\"insecure: true\", or not an agent)");
	} else {
		z->stats.refused_handshake++;
		zap_log_refusal(z, addr, ZAP_WHY_HANDSHAKE,
		    "the ZeroMQ handshake failed (not a ZeroMQ client, or "
		    "a broken one)");
	}
}

// The directory's modification time, so that a file just added is seen at
// once however recent the last scan.
static void
zap_dir_mtime(const char *dir, struct timespec *out)
{
	struct stat st;

	if (stat(dir, &st) == 0)
		*out = st.st_mtim;
	else
		out->tv_sec = out->tv_nsec = 0;
}

// The key was not found: new key files are admitted without a reload.
static const struct zap_key *
zap_rescan(struct zap *z, const uint8_t *key)
{
	struct zap_keys fresh;
	struct timespec mtime;
	const struct zap_key *k;
	int64_t now = clock_mono_us();

	zap_dir_mtime(z->dir, &mtime);
	if (mtime.tv_sec == z->scanned_mtime.tv_sec && mtime.tv_nsec == z->scanned_mtime.tv_nsec &&
	    now - z->scanned_mono < ZAP_RESCAN_US)
		return NULL;
	z->scanned_mono = now;
	z->scanned_mtime = mtime;
	if (zap_scan(z->dir, true, &fresh) < 0)
		return NULL;
	for (size_t i = 0; i < fresh.n; i++) {
		// Only additions: taking a key away is a revocation, which
		// must also drop its connections (zap_reload, on SIGHUP).
		if (zap_keys_find(&z->keys, fresh.v[i].key) == NULL &&
		    zap_keys_find(&z->revoked, fresh.v[i].key) == NULL) {
			zap_keys_add(&z->keys, fresh.v[i].name, fresh.v[i].key);
			log_info("admitting the new key of agent \"%s\" from \"%s\"",
			    fresh.v[i].name, z->dir);
		}
	}
	free(fresh.v);
	z->stats.keys = z->keys.n;
	k = zap_keys_find(&z->keys, key);
	return k;
}

static void
zap_reply(struct zap *z, const struct zloop_frame *request_id, const char *code, const char *text,
    const char *user_id)
{
	const void *data[ZAP_MSG_FRAMES] = { "1.0", "", code, text, user_id, "" };
	size_t len[ZAP_MSG_FRAMES] = { 3, 0, strlen(code), strlen(text), strlen(user_id), 0 };

	if (request_id != NULL) {
		data[1] = zloop_frame_data(request_id);
		len[1] = zloop_frame_size(request_id);
	}
	if (zloop_send(z->z, data, len, ZAP_MSG_FRAMES) < 0)
		log_warnx("could not answer a ZAP request: %s", zloop_strerror(errno));
}

// Frames as text for the log: the peer address, at most 63 bytes.
static void
zap_frame_text(const struct zloop_frame *m, char *out, size_t size)
{
	size_t n = zloop_frame_size(m);
	const char *p = zloop_frame_data(m);

	if (n >= size)
		n = size - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
	out[n] = '\0';
}

static void
zap_on_msg(const struct zloop_frame *parts, int nparts, void *arg)
{
	struct zap *z = arg;
	const struct zap_key *k;
	char addr[64], why[160];
	uint8_t key[CURVEKEY_BIN_LEN];

	// Six frames and the mechanism's credentials: none for NULL, one
	// (the client's public key) for CURVE.
	if (nparts < 6 || zloop_frame_size(&parts[0]) != 3 ||
	    memcmp(zloop_frame_data(&parts[0]), "1.0", 3) != 0) {
		// libzmq itself sends these: a malformed one is a bug there,
		// and the handshake it belongs to fails.
		log_warnx("malformed ZAP request (%d frames): refused", nparts);
		zap_reply(z, nparts >= 2 ? &parts[1] : NULL, "500", "malformed request", "");
		return;
	}
	zap_frame_text(&parts[3], addr, sizeof(addr));
	if (zloop_frame_size(&parts[5]) != 5 ||
	    memcmp(zloop_frame_data(&parts[5]), "CURVE", 5) != 0 || nparts != 7 ||
	    zloop_frame_size(&parts[6]) != CURVEKEY_BIN_LEN) {
		z->stats.refused_mechanism++;
		zap_log_refusal(z, addr, ZAP_WHY_MECHANISM, "only CurveZMQ clients are admitted");
		zap_reply(z, &parts[1], "400", "CurveZMQ required", "");
		return;
	}
	memcpy(key, zloop_frame_data(&parts[6]), CURVEKEY_BIN_LEN);
	k = zap_keys_find(&z->keys, key);
	if (k == NULL && zap_keys_find(&z->revoked, key) == NULL)
		k = zap_rescan(z, key);
	if (k != NULL) {
		z->stats.admitted++;
		log_debug("admitted the key of agent \"%s\" from %s", k->name, addr);
		zap_reply(z, &parts[1], "200", "OK", k->name);
		return;
	}
	if ((k = zap_keys_find(&z->revoked, key)) != NULL) {
		z->stats.refused_revoked_key++;
		snprintf(why, sizeof(why), "the key of agent \"%s\" was revoked", k->name);
	} else {
		char z85[CURVEKEY_Z85_LEN + 1];

		z->stats.refused_unknown_key++;
		zloop_z85_encode(z85, key, CURVEKEY_BIN_LEN);
		snprintf(why, sizeof(why), "public key \"%s\" is in no file of \"%s\"", z85,
		    z->dir);
	}
	zap_log_refusal(z, addr, k != NULL ? ZAP_WHY_REVOKED : ZAP_WHY_UNKNOWN, why);
	zap_reply(z, &parts[1], "400", "key not admitted", "");
}

int
zap_reload(struct zap *z, const char *keys_dir)
{
	struct zap_keys fresh;
	int revoked = 0;

	if (zap_scan(keys_dir, false, &fresh) < 0) {
		log_warnx("agent keys not reloaded: keeping the %zu keys admitted so far",
		    z->keys.n);
		return -1;
	}
	for (size_t i = 0; i < z->keys.n; i++) {
		if (zap_keys_find(&fresh, z->keys.v[i].key) != NULL)
			continue;
		log_warnx("revoked the key of agent \"%s\": its file is gone from \"%s\"",
		    z->keys.v[i].name, keys_dir);
		if (z->revoked.n < ZAP_MAX_REVOKED)
			zap_keys_add(&z->revoked, z->keys.v[i].name, z->keys.v[i].key);
		revoked++;
	}
	// A key put back is admitted again.
	for (size_t i = 0; i < z->revoked.n;) {
		if (zap_keys_find(&fresh, z->revoked.v[i].key) != NULL)
			z->revoked.v[i] = z->revoked.v[--z->revoked.n];
		else
			i++;
	}
	free(z->keys.v);
	z->keys = fresh;
	z->stats.keys = z->keys.n;
	free(z->dir);
	z->dir = xstrdup(keys_dir);
	zap_dir_mtime(z->dir, &z->scanned_mtime);
	z->scanned_mono = clock_mono_us();
	log_info("%zu agent keys admitted from \"%s\"", z->keys.n, keys_dir);
	return revoked;
}

struct zap *
zap_new(struct event_base *base, void *zctx, const char *keys_dir)
{
	struct zap *z = xcalloc(1, sizeof(*z));

	if (zap_scan(keys_dir, false, &z->keys) < 0)
		goto fail;
	z->dir = xstrdup(keys_dir);
	zap_dir_mtime(z->dir, &z->scanned_mtime);
	z->scanned_mono = clock_mono_us();
	z->stats.keys = z->keys.n;
	z->sock = zloop_socket_plain(zctx, ZLOOP_REP);
	if (z->sock == NULL)
		goto fail;
	zloop_set_int(z->sock, ZLOOP_LINGER, 0);
	if (zloop_bind(z->sock, ZAP_ENDPOINT) < 0) {
		log_warnx("could not bind the ZAP handler to \"%s\": %s", ZAP_ENDPOINT,
		    zloop_strerror(errno));
		goto fail;
	}
	z->z = zloop_new(base, z->sock, zap_on_msg, z);
	if (z->z == NULL)
		goto fail;
	log_info("%zu agent keys admitted from \"%s\"", z->keys.n, keys_dir);
	return z;
fail:
	zap_free(z);
	return NULL;
}

bool
zap_admits(const struct zap *z, const char *name)
{
	for (size_t i = 0; i < z->keys.n; i++)
		if (strcmp(z->keys.v[i].name, name) == 0)
			return true;
	return false;
}

void
zap_get_stats(const struct zap *z, struct zap_stats *out)
{
	*out = z->stats;
}

void
zap_free(struct zap *z)
{
	if (z == NULL)
		return;
	zloop_free(z->z);
	zloop_close(z->sock);
	free(z->keys.v);
	free(z->revoked.v);
	free(z->dir);
	free(z);
}
