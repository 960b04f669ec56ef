// SPDX-License-Identifier: Apache-2.0
//
// What the aggregator may say about a libpq connection string: a copy with
// its password blanked, in either form libpq accepts (a postgresql:// URL
// or key=value pairs).  Pure string handling, no libpq: anything that puts
// a `database:` value into a log line or an error goes through here first,
// so a password never reaches a log.
#ifndef VANTAGE_CONNINFO_H
#define VANTAGE_CONNINFO_H

// The text a password is replaced with.
#define CONNINFO_REDACTED "********"

// Returns an owned copy of conninfo with every password value replaced by
// CONNINFO_REDACTED; the rest is unchanged.
char *conninfo_redact(const char *conninfo);

#endif
