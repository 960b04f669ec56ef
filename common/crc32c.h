// SPDX-License-Identifier: Apache-2.0
//
// CRC-32C (Castagnoli), the checksum of every agent spool record: it catches
// torn and bit-flipped records that a length prefix alone would accept.
#ifndef VANTAGE_CRC32C_H
#define VANTAGE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

// crc32c(0, data, len) checksums data; pass a previous result as crc to
// continue over more bytes.
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
