// SPDX-License-Identifier: Apache-2.0
//
// What the wire fuzzer and its seed generator must agree on: the receiver's
// clock.  wire_decode_agent refuses timestamps more than a day away from it,
// so seeds written for another "now" would be rejected before reaching the
// checks behind the timestamp checks.
#ifndef VANTAGE_FUZZ_WIRE_H
#define VANTAGE_FUZZ_WIRE_H

#include <stdint.h>

// 2023-11-14 22:13:20 UTC; fixed so that a crash input replays identically.
#define FUZZ_WIRE_NOW_US INT64_C(1700000000000000)

#endif
