package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
)

func groupKeyBox() (key, box []byte) {
	key, box = make([]byte, 32), make([]byte, 32)
	rand.Read(key)
	rand.Read(box)
	return key, box
}

func TestGroupRoundTripAndSizes(t *testing.T) {
	key, box := groupKeyBox()
	for _, n := range []int{0, 1, 100, 1000, 5000, 60000, MaxGroupRecord()} {
		rec := bytes.Repeat([]byte{7}, n)
		env, err := SealGroup(key, box, rec)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !slices.Contains(WireSizes, len(env)) {
			t.Fatalf("%d bytes sealed to %d, not a wire size", n, len(env))
		}
		e, err := Parse(env)
		if err != nil || e.Type != TypeGroup {
			t.Fatalf("parse: %v %v", e, err)
		}
		got, err := OpenGroup(key, box, e)
		if err != nil || !bytes.Equal(got, rec) {
			t.Fatalf("%d bytes: open: %v", n, err)
		}
	}
	if _, err := SealGroup(key, box, make([]byte, MaxGroupRecord()+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
}

// A record sealed for one mailbox or key opens nowhere else, and a flipped
// bit anywhere in the body is caught.
func TestGroupBinding(t *testing.T) {
	key, box := groupKeyBox()
	key2, box2 := groupKeyBox()
	env, err := SealGroup(key, box, []byte("hello group"))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := Parse(env)
	if _, err := OpenGroup(key2, box, e); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := OpenGroup(key, box2, e); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("other mailbox: %v", err)
	}
	for i := 0; i < len(e.Body); i += 97 {
		bad := &Envelope{Type: TypeGroup, Body: bytes.Clone(e.Body)}
		bad.Body[i] ^= 1
		if _, err := OpenGroup(key, box, bad); err == nil {
			t.Fatalf("flipped byte %d opened", i)
		}
	}
	// Two seals of the same record differ (random nonce).
	env2, _ := SealGroup(key, box, []byte("hello group"))
	if bytes.Equal(env, env2) {
		t.Fatal("two seals are identical")
	}
}

func FuzzOpenGroup(f *testing.F) {
	key, box := groupKeyBox()
	for _, n := range []int{0, 10, 2000} {
		env, _ := SealGroup(key, box, make([]byte, n))
		addVariants(f, env)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Parse(in)
		if err != nil || e.Type != TypeGroup {
			return
		}
		if rec, err := OpenGroup(key, box, e); err == nil && len(rec) > MaxGroupRecord() {
			t.Fatal("opened an oversized record")
		}
	})
}
