package swarmclient

import (
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// TestDropEntryChecked: ReadDrop keeps only what a node may have stored:
// drop entries of the mailbox read, whose hash matches their content,
// with the first-contact work and within the drop TTL cap. A lying node
// cannot slip in junk it did not pay for.
func TestDropEntryChecked(t *testing.T) {
	mb := mailbox.BucketID(3, 4)
	ts := wire.CoarseTime(time.Now().UnixMilli())
	exp := ts + time.Hour.Milliseconds()
	mk := func(mb mailbox.ID, ns int32, ts, exp int64, data []byte) *wire.Message {
		h := swarm.MessageHash(mb, ns, ts, exp, data)
		return &wire.Message{Hash: h[:], Mailbox: mb[:], Namespace: ns, Timestamp: ts, Expiry: exp, Data: data}
	}
	good := mailbox.SealRequest(mb, ts, exp, []byte("hello"), mailbox.RequestWorkBase)
	if m, ok := dropEntry(mb, mk(mb, wire.DropNamespace, ts, exp, good)); !ok || string(m.Data) != string(good) || m.Namespace != wire.DropNamespace {
		t.Fatal("a good drop entry was dropped")
	}
	other := mailbox.BucketID(3, 5)
	long := ts + wire.MaxDropTTL + 60_000
	bad := map[string]*wire.Message{
		"no work":          mk(mb, wire.DropNamespace, ts, exp, []byte("0123456789 no work")),
		"other namespace":  mk(mb, wire.RequestNamespace, ts, exp, good),
		"other mailbox":    mk(other, wire.DropNamespace, ts, exp, mailbox.SealRequest(other, ts, exp, []byte("x"), mailbox.RequestWorkBase)),
		"above the cap":    mk(mb, wire.DropNamespace, ts, long, mailbox.SealRequest(mb, ts, long, []byte("x"), mailbox.RequestWorkBase)),
		"hash not content": func() *wire.Message { m := mk(mb, wire.DropNamespace, ts, exp, good); m.Expiry++; return m }(),
	}
	for name, m := range bad {
		if _, ok := dropEntry(mb, m); ok {
			t.Errorf("%s: kept", name)
		}
	}
}
