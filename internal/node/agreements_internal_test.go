package node

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/wire"
)

// TestAgreements: a peer that found every digest equal is skipped for the
// quiet window, for the same digests and live set only.
func TestAgreements(t *testing.T) {
	var a agreements
	p, q := peer.ID("p"), peer.ID("q")
	ds := []wire.MailboxDigest{{Mailbox: []byte{2}, Count: 1, XOR: []byte{9}}, {Mailbox: []byte{1}, Count: 3, XOR: []byte{7}}}
	sum := sumDigests(ds)
	reordered := sumDigests([]wire.MailboxDigest{ds[1], ds[0]})
	if sum != reordered {
		t.Fatal("the sum depends on the order of the digests")
	}
	changed := sumDigests([]wire.MailboxDigest{{Mailbox: []byte{1}, Count: 4, XOR: []byte{7}}, {Mailbox: []byte{2}, Count: 1, XOR: []byte{9}}})
	t0 := time.Unix(1000, 0)
	const window = 40 * time.Second
	if a.quiet(p, sum, 1, t0, window) {
		t.Fatal("quiet before any agreement")
	}
	a.record(p, sum, 1, t0, true)
	a.record(q, sum, 1, t0, false)
	if !a.quiet(p, sum, 1, t0.Add(window-time.Second), window) {
		t.Error("not quiet within the window")
	}
	if a.quiet(q, sum, 1, t0.Add(time.Second), window) {
		t.Error("quiet for a peer that did not agree")
	}
	if a.quiet(p, changed, 1, t0.Add(time.Second), window) {
		t.Error("quiet for changed digests")
	}
	if a.quiet(p, sum, 1, t0.Add(window), window) {
		t.Error("quiet after the window")
	}
	a.record(p, sum, 1, t0, true)
	if a.quiet(p, sum, 2, t0.Add(time.Second), window) {
		t.Error("quiet after the live set changed")
	}
	if a.quiet(p, sum, 2, t0.Add(time.Second), window) {
		t.Error("an agreement survived the change of live set")
	}
	a.record(p, sum, 2, t0, true)
	a.record(p, sum, 2, t0, false)
	if a.quiet(p, sum, 2, t0.Add(time.Second), window) {
		t.Error("quiet after a round that did not agree")
	}
}
