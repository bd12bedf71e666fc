package ratchet

import (
	"bytes"
	"fmt"
	"testing"
)

func msgText(i int) []byte { return []byte(fmt.Sprintf("message %d", i)) }

func TestInOrderBothDirections(t *testing.T) {
	p := setup(t, 1, 0)
	for i := range 20 {
		m := mustEncrypt(t, p.a, msgText(i))
		mustDecrypt(t, p.b, m, msgText(i))
		m = mustEncrypt(t, p.b, msgText(-i))
		mustDecrypt(t, p.a, m, msgText(-i))
	}
}

func TestAlternatingBursts(t *testing.T) {
	p := setup(t, 1, 0)
	sides := [2]*Session{p.a, p.b}
	for round := range 12 {
		from, to := sides[round%2], sides[(round+1)%2]
		n := 1 + round%4
		var ms [][]byte
		for i := range n {
			ms = append(ms, mustEncrypt(t, from, msgText(round*10+i)))
		}
		for i, m := range ms {
			mustDecrypt(t, to, m, msgText(round*10+i))
		}
	}
	if p.a.SkippedKeys() != 0 || p.b.SkippedKeys() != 0 {
		t.Fatal("skipped keys left after in-order delivery")
	}
}

func TestOutOfOrderReverse50(t *testing.T) {
	p := setup(t, 1, 0)
	var ms [][]byte
	for i := range 50 {
		ms = append(ms, mustEncrypt(t, p.b, msgText(i)))
	}
	for i := 49; i >= 0; i-- {
		mustDecrypt(t, p.a, ms[i], msgText(i))
		if got := p.a.SkippedKeys(); got != i {
			t.Fatalf("after message %d: %d skipped keys, want %d", i, got, i)
		}
	}
	// Across a DH ratchet step too: Alice's messages of two chains arrive
	// shuffled.
	var first, second [][]byte
	for i := range 5 {
		first = append(first, mustEncrypt(t, p.a, msgText(100+i)))
	}
	mustDecrypt(t, p.b, first[4], msgText(104))
	mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("ack")), []byte("ack"))
	for i := range 5 {
		second = append(second, mustEncrypt(t, p.a, msgText(200+i)))
	}
	order := []struct {
		m    []byte
		want int
	}{{second[3], 203}, {first[1], 101}, {second[0], 200}, {first[0], 100}, {first[3], 103}, {second[4], 204}, {first[2], 102}, {second[2], 202}, {second[1], 201}}
	for _, o := range order {
		mustDecrypt(t, p.b, o.m, msgText(o.want))
	}
	if p.b.SkippedKeys() != 0 {
		t.Fatalf("%d skipped keys left", p.b.SkippedKeys())
	}
}

func TestLoss(t *testing.T) {
	p := setup(t, 1, 0)
	lost := map[int]bool{}
	for i := range 100 {
		m := mustEncrypt(t, p.a, msgText(i))
		if i%7 == 3 || i%11 == 0 {
			lost[i] = true
			continue
		}
		mustDecrypt(t, p.b, m, msgText(i))
		if i%25 == 24 { // the conversation goes on both ways
			mustDecrypt(t, p.a, mustEncrypt(t, p.b, msgText(-i)), msgText(-i))
		}
	}
	mustDecrypt(t, p.b, mustEncrypt(t, p.a, []byte("last")), []byte("last"))
	if p.b.SkippedKeys() != len(lost) {
		t.Fatalf("%d skipped keys, %d lost messages", p.b.SkippedKeys(), len(lost))
	}
}

func TestReplayRejected(t *testing.T) {
	p := setup(t, 1, 0)
	m0 := mustEncrypt(t, p.a, msgText(0))
	m1 := mustEncrypt(t, p.a, msgText(1))
	m2 := mustEncrypt(t, p.a, msgText(2))
	mustDecrypt(t, p.b, m0, msgText(0))
	mustDecrypt(t, p.b, m2, msgText(2)) // m1 skipped
	_, err := p.b.Decrypt(m0)
	wantErr(t, err, ErrDuplicate)
	_, err = p.b.Decrypt(m2)
	wantErr(t, err, ErrDuplicate)
	mustDecrypt(t, p.b, m1, msgText(1)) // via the skipped key
	_, err = p.b.Decrypt(m1)
	wantErr(t, err, ErrDuplicate)
	// The initial message's ratchet message too.
	im, _ := ParseInitialMessage(p.initial)
	_, err = p.b.Decrypt(im.Message)
	wantErr(t, err, ErrDuplicate)

	// Replays from a finished chain (after DH steps both ways).
	mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("r")), []byte("r"))
	m3 := mustEncrypt(t, p.a, msgText(3))
	mustDecrypt(t, p.b, m3, msgText(3))
	for _, old := range [][]byte{m0, m1, m2, im.Message} {
		_, err = p.b.Decrypt(old)
		wantErr(t, err, ErrDuplicate)
	}
	// The session still works.
	mustDecrypt(t, p.b, mustEncrypt(t, p.a, msgText(4)), msgText(4))
}

func TestTamperRejected(t *testing.T) {
	p := setup(t, 1, 0)
	mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("start")), []byte("start"))
	for _, newChain := range []bool{false, true} {
		if newChain { // the next message starts a new DH chain
			mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("turn")), []byte("turn"))
		} else {
			mustDecrypt(t, p.b, mustEncrypt(t, p.a, []byte("same chain")), []byte("same chain"))
		}
		m := mustEncrypt(t, p.a, bytes.Repeat([]byte("secret "), 30))
		pm, err := ParseMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := p.b.Marshal()
		hdrStart := bytes.Index(m, pm.HeaderBytes)
		ctStart := bytes.Index(m, pm.Ciphertext)
		rejected := 0
		for i := range m {
			for _, bit := range []byte{0x01, 0x80} {
				bad := bytes.Clone(m)
				bad[i] ^= bit
				if _, err := p.b.Decrypt(bad); err == nil {
					t.Fatalf("byte %d bit %#x flipped: accepted (header at %d, ciphertext at %d)", i, bit, hdrStart, ctStart)
				}
				rejected++
			}
		}
		// Tampering with the parsed header fields while keeping valid
		// encodings.
		for _, h := range []Header{
			{DH: pm.Header.DH, PN: pm.Header.PN + 1, N: pm.Header.N},
			{DH: pm.Header.DH, PN: pm.Header.PN, N: pm.Header.N + 1},
			{DH: flip(pm.Header.DH, 0), PN: pm.Header.PN, N: pm.Header.N},
		} {
			hb, _ := encodeHeader(h)
			bad, _ := encodeMessage(hb, pm.Ciphertext)
			if _, err := p.b.Decrypt(bad); err == nil {
				t.Fatal("modified header accepted")
			}
		}
		after, _ := p.b.Marshal()
		if !bytes.Equal(before, after) {
			t.Fatal("rejected messages changed the session state")
		}
		mustDecrypt(t, p.b, m, bytes.Repeat([]byte("secret "), 30))
		if rejected < 2*len(pm.Ciphertext) {
			t.Fatal("too few tamper attempts")
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestLongOneWayRun(t *testing.T) {
	p := setup(t, 1, 0)
	for i := range 2000 {
		m := mustEncrypt(t, p.a, msgText(i))
		mustDecrypt(t, p.b, m, msgText(i))
	}
	if p.a.ns != 2001 || p.b.nr != 2001 {
		t.Fatalf("counters ns=%d nr=%d", p.a.ns, p.b.nr)
	}
	mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("done")), []byte("done"))
}

func TestSkipLimits(t *testing.T) {
	p := setup(t, 1, 0)
	var ms [][]byte
	for i := range MaxSkip + 2 {
		ms = append(ms, mustEncrypt(t, p.a, msgText(i)))
	}
	// ms[0] was preceded by the initial message (n=0), so ms[i] has
	// N = i+1 and Bob's nr is 1: ms[MaxSkip+1] would skip MaxSkip+1.
	_, err := p.b.Decrypt(ms[MaxSkip+1])
	wantErr(t, err, ErrTooManySkipped)
	if p.b.SkippedKeys() != 0 {
		t.Fatal("failed decrypt stored keys")
	}
	mustDecrypt(t, p.b, ms[MaxSkip], msgText(MaxSkip)) // skips exactly MaxSkip
	if p.b.SkippedKeys() != MaxSkip {
		t.Fatalf("%d skipped keys", p.b.SkippedKeys())
	}
	mustDecrypt(t, p.b, ms[0], msgText(0))
	mustDecrypt(t, p.b, ms[MaxSkip+1], msgText(MaxSkip+1))
}

func TestSkippedStoreEvictsOldest(t *testing.T) {
	p := setup(t, 1, 0)
	const perChain = 900
	var chains [][][]byte
	for c := range 3 {
		var ms [][]byte
		for i := range perChain {
			ms = append(ms, mustEncrypt(t, p.a, msgText(c*10000+i)))
		}
		// Bob gets only the last of each chain, then answers, so Alice
		// starts a new chain.
		mustDecrypt(t, p.b, ms[perChain-1], msgText(c*10000+perChain-1))
		mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("ack")), []byte("ack"))
		chains = append(chains, ms)
	}
	if got := p.b.SkippedKeys(); got != MaxSkippedKeys {
		t.Fatalf("%d skipped keys, want the cap %d", got, MaxSkippedKeys)
	}
	// 3*899 = 2697 were skipped: the 697 oldest (chain 0) are gone.
	evicted := 3*(perChain-1) - MaxSkippedKeys
	for i := range evicted {
		if _, err := p.b.Decrypt(chains[0][i]); err == nil {
			t.Fatalf("evicted message %d decrypted", i)
		}
	}
	mustDecrypt(t, p.b, chains[0][evicted], msgText(evicted))
	mustDecrypt(t, p.b, chains[2][0], msgText(20000))
	mustDecrypt(t, p.b, chains[1][perChain-2], msgText(10000+perChain-2))
	// Survives serialization with order intact.
	c := clone(t, p.b)
	if c.SkippedKeys() != p.b.SkippedKeys() {
		t.Fatal("skipped keys lost in serialization")
	}
	want := p.b.skipped.entries()
	got := c.skipped.entries()
	for i := range want {
		if want[i].key != got[i].key || !bytes.Equal(want[i].mk, got[i].mk) {
			t.Fatalf("entry %d differs after round trip", i)
		}
	}
}

func TestEncryptSizeLimit(t *testing.T) {
	p := setup(t, 1, 0)
	if _, err := p.a.Encrypt(make([]byte, MaxMessageSize)); err == nil {
		t.Fatal("oversized plaintext encrypted")
	}
	big := make([]byte, MaxMessageSize-200)
	m := mustEncrypt(t, p.a, big)
	if len(m) > MaxMessageSize {
		t.Fatalf("message of %d bytes", len(m))
	}
	mustDecrypt(t, p.b, m, big)
}

// The documented overhead bounds hold at their extremes (counters and
// prekey IDs at their largest encodings, plaintexts across CBOR head
// sizes).
func TestOverheadBounds(t *testing.T) {
	p := setup(t, 1, 0)
	maxMsg, maxIM := 0, 0
	for _, huge := range []bool{false, true} {
		if huge {
			p.a.ns, p.a.pn = 1<<31, 1<<31
		}
		for _, n := range []int{0, 1, 200, 255, 70000, MaxMessageSize - MaxOverhead} {
			m := mustEncrypt(t, p.a, make([]byte, n))
			maxMsg = max(maxMsg, len(m)-n)
			im, _ := p.a.InitialMessage(m)
			im.OneTimeID, im.SignedPrekeyID, im.KEMPrekeyID = 1<<31, 1<<31, 1<<31
			enc, _ := im.Encode()
			maxIM = max(maxIM, len(enc)-len(m))
		}
	}
	if maxMsg != MaxOverhead {
		t.Fatalf("largest message overhead %d, MaxOverhead %d", maxMsg, MaxOverhead)
	}
	if maxIM != MaxInitialOverhead {
		t.Fatalf("largest initial overhead %d, MaxInitialOverhead %d", maxIM, MaxInitialOverhead)
	}
}

// Messages of a previous sending chain that arrive after the first message
// of the next chain decrypt through keys skipped via the header's PN.
func TestLateMessagesFromPreviousChain(t *testing.T) {
	p := setup(t, 1, 0)
	mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("b0")), []byte("b0"))
	a0 := mustEncrypt(t, p.a, []byte("a0"))
	a1 := mustEncrypt(t, p.a, []byte("a1"))
	a2 := mustEncrypt(t, p.a, []byte("a2"))
	mustDecrypt(t, p.b, a0, []byte("a0"))
	mustDecrypt(t, p.a, mustEncrypt(t, p.b, []byte("b1")), []byte("b1")) // Alice steps
	a3 := mustEncrypt(t, p.a, []byte("a3"))
	if h, _ := ParseMessage(a3); h.Header.PN != 3 || h.Header.N != 0 {
		t.Fatalf("header PN=%d N=%d, want 3 and 0", h.Header.PN, h.Header.N)
	}
	mustDecrypt(t, p.b, a3, []byte("a3"))
	if p.b.SkippedKeys() != 2 {
		t.Fatalf("%d skipped keys, want 2", p.b.SkippedKeys())
	}
	mustDecrypt(t, p.b, a2, []byte("a2"))
	mustDecrypt(t, p.b, a1, []byte("a1"))
	_, err := p.b.Decrypt(a1)
	wantErr(t, err, ErrDuplicate)
}
