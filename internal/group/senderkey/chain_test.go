package senderkey

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/umbra-im/umbra/internal/wire"
)

func TestRoundTrip(t *testing.T) {
	own, peer := newChains(t, 1)
	for i := range 5 {
		mustDecrypt(t, peer, mustEncrypt(t, own, msgText(i), groupA), groupA, msgText(i))
	}
	mustDecrypt(t, peer, mustEncrypt(t, own, nil, groupA), groupA, nil)
	big := bytes.Repeat([]byte{7}, 64<<10)
	mustDecrypt(t, peer, mustEncrypt(t, own, big, groupA), groupA, big)
	if own.Iteration() != 7 || peer.Iteration() != 7 || peer.SkippedKeys() != 0 {
		t.Fatalf("iterations %d/%d, skipped %d", own.Iteration(), peer.Iteration(), peer.SkippedKeys())
	}
	if own.ChainID() != peer.ChainID() || !bytes.Equal(own.SigningKey(), peer.SigningKey()) {
		t.Fatal("receiver chain does not match the sender's")
	}
	m := mustEncrypt(t, own, []byte("x"), groupA)
	if n := len(m) - 1; n > MaxOverhead {
		t.Fatalf("overhead %d > MaxOverhead %d", n, MaxOverhead)
	}
	// The largest plaintext makes a message a receiver accepts.
	maxPT := make([]byte, MaxMessageSize-MaxOverhead)
	m = mustEncrypt(t, own, maxPT, groupA)
	if len(m) > MaxMessageSize {
		t.Fatalf("largest message is %d bytes, limit %d", len(m), MaxMessageSize)
	}
	mustDecrypt(t, peer, m, groupA, maxPT)
	if _, err := own.Encrypt(make([]byte, MaxMessageSize-MaxOverhead+1), groupA); err == nil {
		t.Fatal("encrypted a plaintext larger than a message")
	}
}

// The chain follows the published construction: an independent
// computation from the distribution's chain key (HMAC-SHA-256 over 0x01 and
// 0x02, HKDF-SHA-256 into an AES-256-GCM key and nonce) opens the messages.
func TestConstruction(t *testing.T) {
	own, dist, err := NewSenderChain(detRand(2))
	if err != nil {
		t.Fatal(err)
	}
	hm := func(k []byte, b byte) []byte {
		m := hmac.New(sha256.New, k)
		m.Write([]byte{b})
		return m.Sum(nil)
	}
	ck := bytes.Clone(dist.ChainKey)
	for i := range uint32(3) {
		enc := mustEncrypt(t, own, msgText(int(i)), groupA)
		m, err := ParseMessage(enc)
		if err != nil {
			t.Fatal(err)
		}
		if m.Iteration != i || m.ChainID != dist.ChainID {
			t.Fatalf("message %d: iteration %d, chain %v", i, m.Iteration, m.ChainID)
		}
		if !ed25519.Verify(dist.SigningKey, signInput(groupA, m.body), m.Signature) {
			t.Fatal("signature does not verify under the distributed key")
		}
		mk := hm(ck, 0x01)
		okm, _ := hkdf.Key(sha256.New, mk, make([]byte, 32), "Umbra_SenderKey_MessageKeys_v1", 44)
		block, _ := aes.NewCipher(okm[:32])
		g, _ := cipher.NewGCM(block)
		pt, err := g.Open(nil, okm[32:], m.Ciphertext, aeadAD(groupA, 1, m.ChainID, i))
		if err != nil || !bytes.Equal(pt, msgText(int(i))) {
			t.Fatalf("message %d: independent decryption: %q, %v", i, pt, err)
		}
		ck = hm(ck, 0x02)
	}
	if d := own.Distribution(); !bytes.Equal(d.ChainKey, ck) || d.Iteration != 3 {
		t.Fatal("chain key after 3 messages is not HMAC(CK, 0x02) applied 3 times")
	}
}

func TestOutOfOrder(t *testing.T) {
	own, peer := newChains(t, 3)
	const n = 40
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = mustEncrypt(t, own, msgText(i), groupA)
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	lost := order[n-1] // never delivered
	for _, i := range order[:n-1] {
		mustDecrypt(t, peer, msgs[i], groupA, msgText(i))
		// A state restored after every message works the same.
		peer = clonePeer(t, peer)
	}
	want := 0
	if lost < n-1 {
		want = 1 // the lost message's key is kept
	}
	if peer.SkippedKeys() != want {
		t.Fatalf("%d skipped keys kept, want %d", peer.SkippedKeys(), want)
	}
	mustDecrypt(t, peer, msgs[lost], groupA, msgText(lost))
	if peer.SkippedKeys() != 0 {
		t.Fatal("skipped keys remain after every message arrived")
	}
}

func TestDuplicates(t *testing.T) {
	own, peer := newChains(t, 4)
	m0 := mustEncrypt(t, own, msgText(0), groupA)
	m1 := mustEncrypt(t, own, msgText(1), groupA)
	m2 := mustEncrypt(t, own, msgText(2), groupA)
	mustDecrypt(t, peer, m0, groupA, msgText(0))
	refuses(t, peer, m0, groupA, ErrDuplicate) // in order, then replayed
	mustDecrypt(t, peer, m2, groupA, msgText(2))
	refuses(t, peer, m2, groupA, ErrDuplicate) // newest, replayed
	mustDecrypt(t, peer, m1, groupA, msgText(1))
	refuses(t, peer, m1, groupA, ErrDuplicate) // skipped, used, replayed
	// The same iteration with other content, genuinely signed: still refused.
	refuses(t, peer, signedAt(t, own, 1, make([]byte, 32), groupA), groupA, ErrDuplicate)
}

// A member given a distribution at iteration n cannot read earlier
// messages.
func TestLateJoin(t *testing.T) {
	own, early := newChains(t, 5)
	var old [][]byte
	for i := range 5 {
		m := mustEncrypt(t, own, msgText(i), groupA)
		mustDecrypt(t, early, m, groupA, msgText(i))
		old = append(old, m)
	}
	late := receiverFromWire(t, own.Distribution())
	for _, m := range old {
		refuses(t, late, m, groupA, ErrBeforeDistribution)
	}
	m := mustEncrypt(t, own, msgText(5), groupA)
	mustDecrypt(t, late, m, groupA, msgText(5))
	mustDecrypt(t, early, m, groupA, msgText(5))
	for _, m := range old {
		refuses(t, late, m, groupA, ErrBeforeDistribution)
	}
}

// A sender, even a hostile one holding the signing key, cannot make a
// receiver derive more than MaxSkip keys for one message.
func TestSkipBound(t *testing.T) {
	own, peer := newChains(t, 6)
	ct := make([]byte, 32)
	for _, it := range []uint32{MaxSkip + 1, MaxSkip + 2, 1 << 30, math.MaxUint32 - 1} {
		refuses(t, peer, signedAt(t, own, it, ct, groupA), groupA, ErrTooManySkipped)
	}
	if peer.SkippedKeys() != 0 {
		t.Fatal("refused messages stored keys")
	}
	// The last iteration is never used by a chain: refused when parsed.
	_, err := ParseMessage(signedAt(t, own, math.MaxUint32, ct, groupA))
	wantErr(t, err, ErrMalformed)

	// Exactly MaxSkip skipped iterations is allowed.
	var msgs [][]byte
	for i := range MaxSkip + 1 {
		msgs = append(msgs, mustEncrypt(t, own, msgText(i), groupA))
	}
	mustDecrypt(t, peer, msgs[MaxSkip], groupA, msgText(MaxSkip))
	if peer.SkippedKeys() != MaxSkip {
		t.Fatalf("%d skipped keys, want %d", peer.SkippedKeys(), MaxSkip)
	}
	// A genuinely signed message with a wrong ciphertext after a skip
	// stores nothing.
	refuses(t, peer, signedAt(t, own, own.Iteration()+10, ct, groupA), groupA, ErrDecrypt)
}

// The skipped-key store keeps at most MaxSkippedKeys, evicting the oldest.
func TestSkippedEviction(t *testing.T) {
	own, peer := newChains(t, 7)
	var msgs [][]byte
	for i := range 2*MaxSkip + 2 {
		msgs = append(msgs, mustEncrypt(t, own, msgText(i), groupA))
	}
	mustDecrypt(t, peer, msgs[MaxSkip], groupA, msgText(MaxSkip))         // skips 0..1999
	mustDecrypt(t, peer, msgs[2*MaxSkip+1], groupA, msgText(2*MaxSkip+1)) // skips 2001..4000
	if peer.SkippedKeys() != MaxSkippedKeys {
		t.Fatalf("%d skipped keys, limit %d", peer.SkippedKeys(), MaxSkippedKeys)
	}
	n := len(peerState(t, peer))
	t.Logf("state with a full skipped-key store: %d bytes", n)
	if n > MaxStateSize {
		t.Fatalf("full state is %d bytes, limit %d", n, MaxStateSize)
	}
	peer = clonePeer(t, peer)
	refuses(t, peer, msgs[0], groupA, ErrDuplicate)                   // evicted
	refuses(t, peer, msgs[MaxSkip-1], groupA, ErrDuplicate)           // evicted
	mustDecrypt(t, peer, msgs[MaxSkip+1], groupA, msgText(MaxSkip+1)) // oldest kept
	mustDecrypt(t, peer, msgs[2*MaxSkip], groupA, msgText(2*MaxSkip))
}

func TestStateRoundTrip(t *testing.T) {
	own, peer := newChains(t, 8)
	m0 := mustEncrypt(t, own, msgText(0), groupA)
	m1 := mustEncrypt(t, own, msgText(1), groupA)
	mustDecrypt(t, peer, m1, groupA, msgText(1))

	own2, err := UnmarshalOwnChain(ownState(t, own))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ownState(t, own2), ownState(t, own)) || own2.ChainID() != own.ChainID() ||
		!bytes.Equal(own2.SigningKey(), own.SigningKey()) {
		t.Fatal("own chain does not round-trip")
	}
	peer2 := clonePeer(t, peer)
	if !bytes.Equal(peerState(t, peer2), peerState(t, peer)) {
		t.Fatal("peer chain does not round-trip")
	}
	m2 := mustEncrypt(t, own2, msgText(2), groupA)
	mustDecrypt(t, peer2, m2, groupA, msgText(2))
	mustDecrypt(t, peer2, m0, groupA, msgText(0))
}

func TestBadState(t *testing.T) {
	own, peer := newChains(t, 9)
	mustEncrypt(t, own, nil, groupA)
	mustEncrypt(t, own, nil, groupA)
	mustDecrypt(t, peer, mustEncrypt(t, own, msgText(2), groupA), groupA, msgText(2))
	var pw peerWire
	if err := wire.Unmarshal(peerState(t, peer), &pw); err != nil {
		t.Fatal(err)
	}
	var ow ownWire
	if err := wire.Unmarshal(ownState(t, own), &ow); err != nil {
		t.Fatal(err)
	}
	enc := func(v any) []byte {
		b, err := wire.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	peerCases := map[string]func(w *peerWire){
		"version":        func(w *peerWire) { w.Version = 2 },
		"chain ID":       func(w *peerWire) { w.ChainID = w.ChainID[:8] },
		"chain key":      func(w *peerWire) { w.ChainKey = nil },
		"signing key":    func(w *peerWire) { w.SigningKey = append(w.SigningKey, 0) },
		"base":           func(w *peerWire) { w.Base = w.Iteration + 1 },
		"skipped size":   func(w *peerWire) { w.Skipped[0].Key = w.Skipped[0].Key[:16] },
		"skipped future": func(w *peerWire) { w.Skipped[1].Iteration = w.Iteration },
		"skipped order":  func(w *peerWire) { w.Skipped[0], w.Skipped[1] = w.Skipped[1], w.Skipped[0] },
		"skipped dup":    func(w *peerWire) { w.Skipped[1].Iteration = w.Skipped[0].Iteration },
		"too many": func(w *peerWire) {
			w.Iteration = MaxSkippedKeys + 10
			w.Skipped = nil
			for i := range MaxSkippedKeys + 1 {
				w.Skipped = append(w.Skipped, skippedWire{Iteration: uint32(i), Key: make([]byte, 32)})
			}
		},
	}
	for name, f := range peerCases {
		w := pw
		w.Skipped = append([]skippedWire(nil), pw.Skipped...)
		f(&w)
		_, err := UnmarshalPeerChain(enc(w))
		if err == nil {
			t.Errorf("peer %s: accepted", name)
		}
		wantErr(t, err, ErrBadState)
	}
	ownCases := map[string]func(w *ownWire){
		"version":   func(w *ownWire) { w.Version = 0 },
		"chain ID":  func(w *ownWire) { w.ChainID = nil },
		"chain key": func(w *ownWire) { w.ChainKey = w.ChainKey[1:] },
		"seed":      func(w *ownWire) { w.SigningSeed = make([]byte, 64) },
	}
	for name, f := range ownCases {
		w := ow
		f(&w)
		_, err := UnmarshalOwnChain(enc(w))
		wantErr(t, err, ErrBadState)
		if err == nil {
			t.Errorf("own %s: accepted", name)
		}
	}
	_, err := UnmarshalPeerChain(make([]byte, MaxStateSize+1))
	wantErr(t, err, ErrBadState)
	_, err = UnmarshalOwnChain([]byte{0xa0})
	wantErr(t, err, ErrBadState)
}

func TestExhausted(t *testing.T) {
	own, _ := newChains(t, 10)
	var w ownWire
	if err := wire.Unmarshal(ownState(t, own), &w); err != nil {
		t.Fatal(err)
	}
	w.Iteration = math.MaxUint32 - 1
	b, _ := wire.Marshal(w)
	last, err := UnmarshalOwnChain(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := last.Encrypt(nil, groupA); err != nil {
		t.Fatalf("last iteration: %v", err)
	}
	_, err = last.Encrypt(nil, groupA)
	wantErr(t, err, ErrExhausted)
}

func TestDistributionParse(t *testing.T) {
	_, dist, err := NewSenderChain(detRand(11))
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := dist.Encode()
	d, err := ParseDistribution(enc)
	if err != nil {
		t.Fatal(err)
	}
	if d.ChainID != dist.ChainID || d.Iteration != 0 || !bytes.Equal(d.ChainKey, dist.ChainKey) || !bytes.Equal(d.SigningKey, dist.SigningKey) {
		t.Fatal("distribution does not round-trip")
	}
	for _, bad := range [][]byte{nil, {0xa0}, enc[:len(enc)-1], append(bytes.Clone(enc), 0), make([]byte, MaxDistributionSize+1)} {
		_, err := ParseDistribution(bad)
		wantErr(t, err, ErrMalformed)
	}
	short := *dist
	short.ChainKey = short.ChainKey[:31]
	_, err = NewReceiverChain(&short)
	wantErr(t, err, ErrMalformed)
	// NewReceiverChain copies: wiping the distribution does not break it.
	p, err := NewReceiverChain(d)
	if err != nil {
		t.Fatal(err)
	}
	d.Wipe()
	if bytes.Equal(peerState(t, p), nil) || bytes.Contains(peerState(t, p), make([]byte, 32)) {
		t.Fatal("receiver chain shares the distribution's chain key")
	}
}

// Chains are safe for concurrent use: every message decrypts exactly once.
func TestConcurrent(t *testing.T) {
	own, peer := newChains(t, 12)
	const workers, per = 4, 25
	msgs := make(chan []byte, workers*per)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				m, err := own.Encrypt([]byte("c"), groupA)
				if err != nil {
					t.Error(err)
					return
				}
				msgs <- m
			}
		})
	}
	wg.Wait()
	close(msgs)
	var all [][]byte
	for m := range msgs {
		all = append(all, m, m) // each twice: one must be a duplicate
	}
	var ok, dup atomic.Int32
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(all); i += workers {
				_, err := peer.Decrypt(all[i], groupA)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrDuplicate):
					dup.Add(1)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != workers*per || dup.Load() != workers*per {
		t.Fatalf("%d decrypted, %d duplicates; want %d each", ok.Load(), dup.Load(), workers*per)
	}
}
