// SPDX-License-Identifier: Apache-2.0
//
// CurveZMQ key files; see curvekey.h.  Files are read whole (they are tiny:
// anything over CURVEKEY_FILE_MAX bytes is not a key file) and checked line
// by line, so a truncated key, a stray character or two keys in one file is
// an error that names the file, never a key that silently differs.
#include "curvekey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zloop.h"

#define CURVEKEY_FILE_MAX 4096

static const char curvekey_z85_alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

bool
curvekey_valid_z85(const char *s, size_t len)
{
	if (len != CURVEKEY_Z85_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || strchr(curvekey_z85_alphabet, s[i]) == NULL)
			return false;
	return true;
}

// Reads path (at most CURVEKEY_FILE_MAX bytes) into text; with secret, the
// file must give group and others no access at all.
static int
curvekey_slurp(const char *path, bool secret, char *text, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: could not open key file: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen,
		    "%s: secret key file is accessible by group or others (mode %04o); "
		    "run \"chmod 600 %s\"",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto fail;
	}
	if (st.st_size > CURVEKEY_FILE_MAX) {
		snprintf(err, errlen, "%s: too large for a key file (%lld bytes)", path,
		    (long long)st.st_size);
		goto fail;
	}
	n = read(fd, text, CURVEKEY_FILE_MAX);
	if (n < 0) {
		snprintf(err, errlen, "%s: could not read key file: %s", path, strerror(errno));
		goto fail;
	}
	*len = (size_t)n;
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

// Finds the one key line of text: comments (#) and blank lines aside,
// exactly one line of 40 Z85 characters.
static int
curvekey_parse(const char *path, const char *text, size_t len, struct curvekey *out, char *err,
    size_t errlen)
{
	size_t pos = 0, keys = 0, lineno = 0;

	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;

		pos += n + (nl != NULL);
		lineno++;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0 || line[0] == '#')
			continue;
		if (!curvekey_valid_z85(line, n)) {
			snprintf(err, errlen,
			    "%s:%zu: not a CurveZMQ key (40 Z85 characters expected, got %zu "
			    "characters)",
			    path, lineno, n);
			return -1;
		}
		if (++keys > 1) {
			snprintf(err, errlen, "%s:%zu: more than one key in the file", path,
			    lineno);
			return -1;
		}
		memcpy(out->z85, line, CURVEKEY_Z85_LEN);
		out->z85[CURVEKEY_Z85_LEN] = '\0';
	}
	if (keys == 0) {
		snprintf(err, errlen, "%s: no key in the file", path);
		return -1;
	}
	return 0;
}

int
curvekey_read_public(const char *path, struct curvekey *out, char *err, size_t errlen)
{
	char text[CURVEKEY_FILE_MAX];
	size_t len;

	if (curvekey_slurp(path, false, text, &len, err, errlen) < 0)
		return -1;
	return curvekey_parse(path, text, len, out, err, errlen);
}

int
curvekey_read_secret(const char *path, struct curvekey *secret, struct curvekey *pub, char *err,
    size_t errlen)
{
	char text[CURVEKEY_FILE_MAX];
	size_t len;
	int rc;

	if (curvekey_slurp(path, true, text, &len, err, errlen) < 0)
		return -1;
	rc = curvekey_parse(path, text, len, secret, err, errlen);
	explicit_bzero(text, sizeof(text));
	if (rc < 0)
		return -1;
	if (zloop_curve_public(pub->z85, secret->z85) < 0) {
		snprintf(err, errlen, "%s: could not derive the public key: %s", path,
		    zloop_strerror(errno));
		return -1;
	}
	return 0;
}

void
curvekey_binary(const struct curvekey *k, uint8_t out[CURVEKEY_BIN_LEN])
{
	zloop_z85_decode(out, k->z85);
}

// Creates path exclusively with mode (whatever the umask) and writes a
// comment line and the key.
static int
curvekey_write(const char *path, mode_t mode, const char *comment, const char *z85, char *err,
    size_t errlen)
{
	char text[256];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "could not create \"%s\": %s%s", path, strerror(errno),
		    errno == EEXIST ? " (key files are never overwritten)" : "");
		return -1;
	}
	n = snprintf(text, sizeof(text), "# %s\n%s\n", comment, z85);
	if (fchmod(fd, mode) < 0 || write(fd, text, (size_t)n) != n || fsync(fd) < 0) {
		snprintf(err, errlen, "could not write \"%s\": %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	explicit_bzero(text, sizeof(text));
	if (close(fd) < 0) {
		snprintf(err, errlen, "could not write \"%s\": %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

int
curvekey_generate(const char *dir, const char *name, char *err, size_t errlen)
{
	char pub[CURVEKEY_Z85_LEN + 1], secret[CURVEKEY_Z85_LEN + 1];
	char pub_path[4096], key_path[4096], comment[160];

	if (!zloop_has_curve()) {
		snprintf(err, errlen, "libzmq was built without libsodium, so it has no CurveZMQ");
		return -1;
	}
	if (zloop_curve_keypair(pub, secret) < 0) {
		snprintf(err, errlen, "could not make a key pair: %s", zloop_strerror(errno));
		return -1;
	}
	snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, name);
	snprintf(pub_path, sizeof(pub_path), "%s/%s.pub", dir, name);
	snprintf(comment, sizeof(comment),
	    "vantage CurveZMQ secret key of \"%s\": keep it on that host only", name);
	if (curvekey_write(key_path, 0600, comment, secret, err, errlen) < 0)
		goto fail;
	snprintf(comment, sizeof(comment), "vantage CurveZMQ public key of \"%s\"", name);
	if (curvekey_write(pub_path, 0644, comment, pub, err, errlen) < 0) {
		unlink(key_path);
		goto fail;
	}
	explicit_bzero(secret, sizeof(secret));
	return 0;
fail:
	explicit_bzero(secret, sizeof(secret));
	return -1;
}
