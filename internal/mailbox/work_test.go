package mailbox

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

func TestRequestWork(t *testing.T) {
	k, _ := NewKey()
	mb := k.ID()
	data := SealRequest(mb, 1000, 2000, []byte("first contact"), 12)
	bits, payload, err := RequestWork(mb, 1000, 2000, data)
	if err != nil || bits < 12 || !bytes.Equal(payload, []byte("first contact")) {
		t.Fatalf("RequestWork = %d, %q, %v", bits, payload, err)
	}
	// The work is bound to mailbox, timestamp and expiry: elsewhere it is
	// (almost surely) worth nothing.
	other, _ := NewKey()
	for _, c := range []struct {
		name   string
		mb     ID
		ts, ex int64
	}{{"other mailbox", other.ID(), 1000, 2000}, {"other timestamp", mb, 1001, 2000}, {"other expiry", mb, 1000, 2001}} {
		if b, _, _ := RequestWork(c.mb, c.ts, c.ex, data); b >= 12 {
			t.Errorf("%s: the work still proves %d bits", c.name, b)
		}
	}
	if _, _, err := RequestWork(mb, 1000, 2000, data[:7]); err == nil {
		t.Error("data shorter than a nonce accepted")
	}
	for waiting, want := range map[int]int{0: 14, 255: 14, 256: 15, 511: 15, 512: 16, 1024: 17, 4096: 19, 8192: 20, 1 << 30: RequestWorkMax} {
		if got := RequiredRequestWork(waiting); got != want {
			t.Errorf("RequiredRequestWork(%d) = %d, want %d", waiting, got, want)
		}
	}
}

// FuzzRequestWork: any data is read without a panic, and a payload comes
// back only behind an 8-byte nonce.
func FuzzRequestWork(f *testing.F) {
	var mb ID
	f.Add([]byte{}, int64(0), int64(0))
	f.Add(SealRequest(mb, 5, 6, []byte("x"), 4), int64(5), int64(6))
	f.Fuzz(func(t *testing.T, data []byte, ts, expiry int64) {
		bits, payload, err := RequestWork(mb, ts, expiry, data)
		if err != nil {
			if len(data) >= 8 {
				t.Fatalf("refused %d bytes: %v", len(data), err)
			}
			return
		}
		if bits < 0 || bits > 256 || !bytes.Equal(payload, data[8:]) {
			t.Fatalf("bits %d, payload %x of %x", bits, payload, data)
		}
	})
}

// TestBucketID: the bucket ID is the documented hash, and differs per
// epoch and per bucket.
func TestBucketID(t *testing.T) {
	want := sha256.Sum256(append([]byte("Umbra_Bucket_v1"), 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 1, 2))
	if got := BucketID(7, 258); got != ID(want) {
		t.Fatalf("BucketID(7, 258) = %x, want %x", got, want)
	}
	if BucketID(7, 258) == BucketID(8, 258) || BucketID(7, 258) == BucketID(7, 259) {
		t.Fatal("bucket IDs collide across epochs or buckets")
	}
}
