package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/wire"
)

// TestPublicNamespaceOwnerOnly: anyone reads a mailbox's public namespace
// (prekey bundles), but only writes signed by the mailbox key land there,
// so nobody can bury an account's bundle under junk.
func TestPublicNamespaceOwnerOnly(t *testing.T) {
	tn := startNet(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tn.client(ctx)
	owner, _ := mailbox.NewKey()
	other, _ := mailbox.NewKey()
	id := owner.ID()
	if _, err := c.Publish(ctx, owner, time.Hour, []byte("bundle")); err != nil {
		t.Fatalf("the owner's publish: %v", err)
	}
	unauthorized := func(what string, err error) {
		t.Helper()
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeUnauthorized {
			t.Fatalf("%s: %v, want an unauthorized error", what, err)
		}
	}
	now := time.Now()
	req := func() *wire.StoreReq {
		return &wire.StoreReq{Mailbox: id[:], Namespace: wire.PublicNamespace, Timestamp: now.UnixMilli(), TTL: time.Hour.Milliseconds(), Data: []byte("junk")}
	}
	_, err := c.PutReq(ctx, req())
	unauthorized("unsigned", err)
	r := req()
	ts, sig := other.Sign(mailbox.MethodPublish, now, r.AuthFields())
	r.Auth = &wire.Auth{Timestamp: ts, Sig: sig}
	_, err = c.PutReq(ctx, r)
	unauthorized("signed by another key", err)
	r = req()
	ts, sig = owner.Sign(mailbox.MethodPublish, now, r.AuthFields())
	r.Auth = &wire.Auth{Timestamp: ts, Sig: sig}
	r.Data = []byte("swapped after signing")
	_, err = c.PutReq(ctx, r)
	unauthorized("data changed after signing", err)
	r = req()
	ts, sig = owner.Sign(mailbox.MethodRetrieve, now, r.AuthFields())
	r.Auth = &wire.Auth{Timestamp: ts, Sig: sig}
	_, err = c.PutReq(ctx, r)
	unauthorized("signed for another method", err)
	// The private namespace stays open to anyone (first contact).
	if _, err := c.Put(ctx, id, 0, time.Hour, []byte("a letter")); err != nil {
		t.Fatalf("a write to the private namespace: %v", err)
	}
	msgs, err := c.ReadPublic(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || string(msgs[0].Data) != "bundle" {
		t.Fatalf("public namespace holds %d messages, want only the owner's bundle", len(msgs))
	}
}
