// SPDX-License-Identifier: Apache-2.0
//
// The software version (git describe at build time).  Kept in one generated
// object so that a new commit relinks the binaries instead of recompiling
// every file, and never leaves a stale version in a binary.
#ifndef VANTAGE_VERSION_H
#define VANTAGE_VERSION_H

extern const char vantage_version[];

#endif
