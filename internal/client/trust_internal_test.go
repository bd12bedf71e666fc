package client

import (
	"encoding/hex"
	"testing"
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
