//go:build race

package client_test

// linkClients is how many clients TestExitsCannotLinkMailboxes runs. The
// race detector makes the 20 clients and 7 nodes of the full test, all in
// one process, more than two cores serve within the onion timeouts (hops
// time out, the path managers back off, card reads fail), so the
// instrumented run uses 12 clients with 10 contacts each; the full-size
// run is the uninstrumented one.
const linkClients = 12

// strictLinkClients is how many clients its strict subtest runs: each
// sends cover traffic at 2.5 requests a second, whether it chats or not.
const strictLinkClients = 6
