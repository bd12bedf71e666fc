package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/wire"
)

// FuzzDeletion: a signed deletion from a peer (a replicated tomb, or one
// fetched in repair) is checked without a panic; one that passes names
// its mailbox, 1 to maxDeleteHashes hashes of 32 bytes, and carries the
// owner's valid signature.
func FuzzDeletion(f *testing.F) {
	key, _ := mailbox.NewKey()
	id := key.ID()
	hashes := [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}
	tomb := wire.Tomb{Mailbox: id[:], Hashes: hashes}
	tomb.Timestamp, tomb.Sig = key.Sign(mailbox.MethodDelete, time.UnixMilli(1_700_000_000_000), tomb.AuthFields())
	good, _ := wire.Marshal(&tomb)
	f.Add(good)
	f.Add(good[:len(good)/2])
	unsigned, _ := wire.Marshal(&wire.Tomb{Mailbox: id[:], Hashes: hashes})
	f.Add(unsigned)
	f.Fuzz(func(t *testing.T, b []byte) {
		var tb wire.Tomb
		if wire.Unmarshal(b, &tb) != nil {
			return
		}
		d, werr := deletionOf(&tb)
		if werr != nil {
			return
		}
		if len(d.Hashes) == 0 || len(d.Hashes) > maxDeleteHashes || len(d.Hashes) != len(tb.Hashes) {
			t.Fatalf("accepted a deletion of %d hashes", len(d.Hashes))
		}
		if mailbox.VerifySig(mailbox.MethodDelete, d.Mailbox, tb.Timestamp, tb.AuthFields(), tb.Sig) != nil {
			t.Fatal("accepted a deletion whose signature does not verify")
		}
	})
}
