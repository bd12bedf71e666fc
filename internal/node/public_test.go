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
// (prekey bundles), but only messages signed by the mailbox key land there,
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
	ts := time.Now().UnixMilli()
	ttl := time.Hour.Milliseconds()
	req := func(data []byte) *wire.StoreReq {
		return &wire.StoreReq{Mailbox: id[:], Namespace: wire.PublicNamespace, Timestamp: ts, TTL: ttl, Data: data}
	}
	_, err := c.PutReq(ctx, req([]byte("junk, unsigned, but long enough to hold a signature's 64 bytes......")))
	unauthorized("unsigned", err)
	_, err = c.PutReq(ctx, req(other.SignPublic(ts, ts+ttl, []byte("junk"))))
	unauthorized("signed by another key", err)
	signed := owner.SignPublic(ts, ts+ttl, []byte("bundle v2"))
	tampered := append([]byte(nil), signed...)
	tampered[len(tampered)-1] ^= 1
	_, err = c.PutReq(ctx, req(tampered))
	unauthorized("payload changed after signing", err)
	r := req(signed)
	r.Timestamp++ // the signature covers timestamp and expiry
	_, err = c.PutReq(ctx, r)
	unauthorized("timestamp changed after signing", err)
	// The private namespace stays open to anyone (first contact).
	if _, err := c.Put(ctx, id, 0, time.Hour, []byte("a letter")); err != nil {
		t.Fatalf("a write to the private namespace: %v", err)
	}
	msgs, err := c.ReadPublic(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || string(msgs[0].Data) != "bundle" {
		t.Fatalf("public namespace holds %d messages, want only the owner's bundle (payload without signature)", len(msgs))
	}
}
