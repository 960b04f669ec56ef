// SPDX-License-Identifier: Apache-2.0
//
// CurveZMQ key files: the one reader (and writer) of the keys the agent,
// the aggregator and vantagectl use, so that all three accept exactly the
// same files.  A key file holds comment lines starting with '#', blank lines,
// and exactly one line of 40 Z85 characters: the public key in NAME.pub, the
// secret key in NAME.key (its public half is derived from it).  A secret key
// file must not be accessible by group or others.  Nothing here keeps a key
// longer than the caller's buffer, and a failure never exits: it says in err
// which file is wrong and why.
#ifndef VANTAGE_CURVEKEY_H
#define VANTAGE_CURVEKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CURVEKEY_Z85_LEN 40 // Z85 text of a 32-byte key
#define CURVEKEY_BIN_LEN 32

// A key as ZeroMQ's socket options take it: Z85 text, NUL-terminated.
struct curvekey {
	char z85[CURVEKEY_Z85_LEN + 1];
};

// True if s is exactly 40 characters of the Z85 alphabet.
bool curvekey_valid_z85(const char *s, size_t len);
// Reads a public key file.  Returns 0, or -1 with "FILE: why" in err.
int curvekey_read_public(const char *path, struct curvekey *out, char *err, size_t errlen);
// Reads a secret key file (refused if group or others may access it) and
// derives its public key.  Returns 0, or -1 with "FILE: why" in err.
int curvekey_read_secret(const char *path, struct curvekey *secret, struct curvekey *pub, char *err,
    size_t errlen);
// The 32 bytes of a valid key (for comparison with a ZAP request).
void curvekey_binary(const struct curvekey *k, uint8_t out[CURVEKEY_BIN_LEN]);
// Makes a new key pair and writes DIR/NAME.key (0600) and DIR/NAME.pub
// (0644).  Neither file may exist already: nothing is ever overwritten.
// Returns 0, or -1 with the reason in err.
int curvekey_generate(const char *dir, const char *name, char *err, size_t errlen);

#endif
