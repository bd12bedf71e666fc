package client

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/identity"
)

// TestNumericFingerprintSignalVector checks the fingerprint against
// libsignal's published test vector (NumericFingerprintGeneratorTest,
// testVectorsVersion1): two 33-byte Curve25519 identity keys, phone numbers
// as stable identifiers, 5200 iterations.
func TestNumericFingerprintSignalVector(t *testing.T) {
	aliceKey, _ := hex.DecodeString("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
	bobKey, _ := hex.DecodeString("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
	const want = "300354477692869396892869876765458257569162576843440918079131"
	a := numericFingerprint(5200, aliceKey, []byte("+14152222222"))
	b := numericFingerprint(5200, bobKey, []byte("+14153333333"))
	if got := displayableFingerprint(a, b); got != want {
		t.Fatalf("alice's view: %s, want %s", got, want)
	}
	if got := displayableFingerprint(b, a); got != want {
		t.Fatalf("bob's view: %s, want %s", got, want)
	}
}

// TestResetClearsStaleVerification: the verified mark holds only for the
// number it was given for. A reset keeps a mark whose number still holds
// (the only case Umbra's keys allow), and clears one whose number is no
// longer the safety number; SafetyNumber never reports a stale mark.
func TestResetClearsStaleVerification(t *testing.T) {
	e := newOfflineEngine(t)
	bob, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	peer := bob.ID().String()
	if _, err := e.AddContact(peer, "Bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetVerified(peer, true); err != nil {
		t.Fatal(err)
	}
	reset := func() *Contact {
		t.Helper()
		e.mu.Lock()
		defer e.mu.Unlock()
		var b batch
		if _, err := e.noteSessionResetLocked(&b, peer); err != nil {
			t.Fatal(err)
		}
		if err := e.kv.PutMany(b.entries); err != nil {
			t.Fatal(err)
		}
		c, err := e.d.contact(peer)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := reset(); !c.Verified || c.ResetAt.IsZero() {
		t.Fatalf("a reset with the same number: %+v, want still verified", c)
	}
	// A mark given for another number (as if the keys had changed).
	e.mu.Lock()
	c, _ := e.d.contact(peer)
	c.VerifiedNumber = strings.Repeat("1", 60)
	if err := e.d.putJSON(contactKey(peer), c); err != nil {
		t.Fatal(err)
	}
	e.mu.Unlock()
	if sn, _ := e.SafetyNumber(peer); sn.Verified {
		t.Fatal("SafetyNumber reports a mark given for another number")
	}
	if c := reset(); c.Verified || c.VerifiedNumber != "" {
		t.Fatalf("a reset kept a stale mark: %+v", c)
	}
	var notices int
	ms, _ := e.Messages(peer)
	for _, m := range ms {
		if m.Notice == NoticeSessionReset {
			notices++
		}
	}
	if notices != 2 {
		t.Fatalf("%d notices, want 2", notices)
	}
}

// BenchmarkSafetyNumber: the cost of one safety number (two sides, 5200
// SHA-512 iterations each), paid on the verify screen and when marking.
func BenchmarkSafetyNumber(b *testing.B) {
	x, _ := identity.New(nil)
	y, _ := identity.New(nil)
	for b.Loop() {
		SafetyNumberOf(x.ID(), y.ID())
	}
}
