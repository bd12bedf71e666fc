package identity

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json regression vectors")

type accountVector struct {
	Seed         string `json:"seed"`
	Phrase       string `json:"phrase"`
	AccountID    string `json:"account_id"`
	SigningKey   string `json:"signing_key"`
	AgreementKey string `json:"agreement_key"`
	Binding      string `json:"binding"`
}

func makeAccountVector(t *testing.T, seed []byte) accountVector {
	t.Helper()
	a, err := FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Public()
	return accountVector{
		Seed:         hex.EncodeToString(seed),
		Phrase:       a.Phrase(),
		AccountID:    a.ID().String(),
		SigningKey:   hex.EncodeToString(p.SigningKey),
		AgreementKey: hex.EncodeToString(p.AgreementKey),
		Binding:      hex.EncodeToString(p.Binding),
	}
}

// TestAccountVectors pins the whole derivation (seed → keys → account ID →
// phrase). Regenerate with `go test -run TestAccountVectors -update` only
// for a deliberate, versioned protocol change.
func TestAccountVectors(t *testing.T) {
	const path = "testdata/account_vectors.json"
	if *update {
		var vs []accountVector
		seeds := [][]byte{make([]byte, 32), bytesOf(0xff, 32)}
		r := detRand(42)
		for range 4 {
			s := make([]byte, 32)
			r.Read(s)
			seeds = append(seeds, s)
		}
		for _, s := range seeds {
			vs = append(vs, makeAccountVector(t, s))
		}
		b, _ := json.MarshalIndent(vs, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vs []accountVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 4 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		seed, err := hex.DecodeString(v.Seed)
		if err != nil {
			t.Fatal(err)
		}
		if got := makeAccountVector(t, seed); got != v {
			t.Fatalf("vector for seed %s changed:\n got %+v\nwant %+v", v.Seed, got, v)
		}
		a, err := Restore(v.Phrase)
		if err != nil || a.ID().String() != v.AccountID {
			t.Fatalf("restore from the vector phrase: %v", err)
		}
		id, err := ParseAccountID(v.AccountID)
		if err != nil || hex.EncodeToString(id[:]) != v.SigningKey {
			t.Fatalf("parse the vector ID: %v", err)
		}
	}
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
