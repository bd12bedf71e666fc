package client

import (
	"bytes"
	"testing"

	"github.com/umbra-im/umbra/internal/group/membership"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// FuzzGroupRecord: whatever a member (or anyone holding the mailbox key)
// posts, parsing ends in an error or a record of a known kind whose
// fields have their sizes; a distribution's signature never verifies for
// bytes it was not made over.
func FuzzGroupRecord(f *testing.F) {
	acct, err := identity.New(bytes.NewReader(bytes.Repeat([]byte{9}, 1<<12))) // the same in every fuzz worker
	if err != nil {
		f.Fatal(err)
	}
	gid, op := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for _, r := range []groupRecord{
		signedDist(acct, gid, op, bytes.Repeat([]byte{3}, 100)),
		{Kind: recOp, Data: []byte{1, 2, 3}},
		{Kind: recMsg, Data: bytes.Repeat([]byte{4}, 300)},
	} {
		b, _ := wire.Marshal(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseGroupRecord(in)
		if err != nil {
			return
		}
		switch r.Kind {
		case recOp, recMsg:
			if len(r.Data) == 0 {
				t.Fatal("empty record accepted")
			}
		case recDist:
			if len(r.Author) != 32 || len(r.Sig) != 64 || len(r.Op) != 32 || len(r.Data) > 256 {
				t.Fatal("distribution with bad field sizes accepted")
			}
			if r.verify(gid) && !bytes.Equal(r.Author, acct.Public().SigningKey) {
				t.Fatal("a signature verified for another author")
			}
		default:
			t.Fatalf("kind %d accepted", r.Kind)
		}
	})
}

// FuzzGroupControl: a pairwise control parses to an error or to one with
// bounded, well-sized fields.
func FuzzGroupControl(f *testing.F) {
	b, _ := wire.Marshal(groupControl{Group: make([]byte, 32), Type: ctlInvite, Ops: [][]byte{{1}},
		SecretOp: make([]byte, 32), Secret: make([]byte, 32)})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := parseGroupControl(in)
		if err != nil {
			return
		}
		if len(c.Group) != 32 || len(c.Secret) != membership.SecretSize || len(c.Ops) == 0 || len(c.Ops) > membership.MaxOps {
			t.Fatalf("accepted %+v", c)
		}
	})
}
