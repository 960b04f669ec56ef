// SPDX-License-Identifier: Apache-2.0
//
// libcurl's multi_socket API on a libevent loop, once for every user (the
// agent's HTTP probes, the aggregator's webhook and mail senders): curl
// says which sockets to watch and when to time out, libevent says when they
// are ready, and each finished transfer is handed to one completion
// callback.  The pattern of curl's docs/examples/multi-event.c.  Never
// blocks, never starts a thread, and allocates nothing per transfer: the
// event of a descriptor is made once and reused for every socket that gets
// that number.  It knows nothing of HTTP; what a transfer does is the easy
// handle's business.
#ifndef VANTAGE_CURL_EV_H
#define VANTAGE_CURL_EV_H

#include <curl/curl.h>
#include <event2/event.h>

// A transfer ended with result.  easy was already removed from the
// adapter (its CURLINFO_* are still readable) and is the caller's again:
// it may be reused, freed, or added anew from inside the callback.
typedef void (*curl_ev_done_cb)(CURL *easy, CURLcode result, void *arg);

struct curl_ev;

// base is borrowed and must outlive the adapter.  Never returns NULL.
struct curl_ev *curl_ev_new(struct event_base *base, curl_ev_done_cb done, void *arg);
// Closes cached connections.  Remove (or clean up) every easy handle
// first; done is not called from here.  Accepts NULL.
void curl_ev_free(struct curl_ev *ce);
// Starts easy (borrowed until done runs or curl_ev_remove).  Sets the
// easy's CLOSESOCKETFUNCTION/DATA, which the adapter needs to stop watching
// a descriptor before it is closed and its number reused.  Returns 0, or
// -1 (nothing will be called back).
int curl_ev_add(struct curl_ev *ce, CURL *easy);
// Abandons a transfer started with curl_ev_add; done is not called.
void curl_ev_remove(struct curl_ev *ce, CURL *easy);

#endif
