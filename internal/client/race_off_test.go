//go:build !race

package client_test

// linkClients is how many clients TestExitsCannotLinkMailboxes runs (see
// race_on_test.go).
const linkClients = 20
