//go:build !race

package client_test

// linkClients is how many clients TestExitsCannotLinkMailboxes runs (see
// race_on_test.go).
const linkClients = 20

// strictLinkClients is how many clients its strict subtest runs: each
// sends cover traffic at 2.5 requests a second, whether it chats or not.
const strictLinkClients = 10
