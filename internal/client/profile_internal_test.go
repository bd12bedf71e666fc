package client

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
)

func pngOf(t testing.TB, w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bombPNG is a small PNG whose header claims w x h pixels.
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(ihdr))))
	b.Write(chunk)
	b.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(chunk)))
	return b.Bytes()
}

func TestNormalizeAvatar(t *testing.T) {
	// A noisy photo-sized image: too large as PNG, so it becomes a JPEG.
	img := image.NewRGBA(image.Rect(0, 0, 1000, 700))
	for y := range 700 {
		for x := range 1000 {
			img.Set(x, y, color.RGBA{uint8(x * y), uint8(x ^ y), uint8(x + 3*y), 255})
		}
	}
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"png": pngOf(t, 400, 500), "jpeg": jb.Bytes(), "small": pngOf(t, 10, 20)} {
		out, err := NormalizeAvatar(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(out) > MaxAvatarBytes {
			t.Fatalf("%s: %d bytes", name, len(out))
		}
		if _, err := CheckAvatar(out); err != nil {
			t.Fatalf("%s: the receiver refuses it: %v", name, err)
		}
		cfg, _, _ := image.DecodeConfig(bytes.NewReader(out))
		if cfg.Width > MaxAvatarSide || cfg.Height > MaxAvatarSide || (name == "small" && (cfg.Width != 10 || cfg.Height != 20)) {
			t.Fatalf("%s: %dx%d", name, cfg.Width, cfg.Height)
		}
	}
	// A decompression bomb is refused from its header, before decoding.
	if _, err := NormalizeAvatar(bombPNG(100000, 100000)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("bomb: %v", err)
	}
	if _, err := NormalizeAvatar([]byte("GIF89a nonsense")); err == nil {
		t.Fatal("junk accepted")
	}
}

func TestCheckProfileBounds(t *testing.T) {
	for _, ok := range []string{"", "Alice", "Zoë 🙂", strings.Repeat("a", MaxProfileName)} {
		if err := CheckProfileName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{strings.Repeat("a", MaxProfileName+1), "a\nb", "\x00", "x\u202e", " pad", "\xff"} {
		if err := CheckProfileName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := CheckAvatar(pngOf(t, MaxAvatarSide+1, 10)); err == nil {
		t.Error("an avatar wider than the limit was accepted")
	}
	if _, err := CheckAvatar(bombPNG(50, 50)); err == nil {
		t.Error("a PNG that does not decode was accepted")
	}
	big := make([]byte, MaxAvatarBytes+1)
	copy(big, pngOf(t, 8, 8))
	if _, err := CheckAvatar(big); err == nil {
		t.Error("an avatar over the byte limit was accepted")
	}
}

// FuzzParseProfile: whatever a peer sends, the parser returns an error or
// a profile within the bounds, without panicking.
func FuzzParseProfile(f *testing.F) {
	good, _ := (&profileBody{Version: 1, Counter: 3, Name: "Bob", Avatar: pngOf(f, 4, 4)}).encode()
	f.Add(good)
	noAvatar, _ := (&profileBody{Version: 1, Counter: 1, Name: "x"}).encode()
	f.Add(noAvatar)
	bomb, _ := (&profileBody{Version: 1, Counter: 1, Avatar: bombPNG(1<<30, 1<<30)}).encode()
	f.Add(bomb)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseProfile(data)
		if err != nil {
			return
		}
		if CheckProfileName(p.Name) != nil || len(p.Avatar) > MaxAvatarBytes {
			t.Fatalf("out of bounds: %q, %d bytes", p.Name, len(p.Avatar))
		}
		if len(p.Avatar) > 0 {
			if _, err := CheckAvatar(p.Avatar); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestReceiveProfileAndTimer: a receiver keeps only a newer profile,
// drops a malformed one, keeps a stranger's (its text may come later),
// and a text sent before the last timer change does not undo it.
func TestReceiveProfileAndTimer(t *testing.T) {
	lightArgon2(t)
	e := newOfflineEngine(t)
	peer, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	from := peer.ID().String()
	receive := func(kind envelope.Kind, body []byte, expire uint32, sentAt time.Time) {
		t.Helper()
		c, err := envelope.NewContent(nil, kind, body, sentAt)
		if err != nil {
			t.Fatal(err)
		}
		c.Expire = expire
		e.mu.Lock()
		defer e.mu.Unlock()
		var b batch
		if _, err := e.receiveContentLocked(&b, from, c, map[string][]string{}); err != nil {
			t.Fatal(err)
		}
		if err := e.kv.PutMany(b.entries); err != nil {
			t.Fatal(err)
		}
	}
	prof := func(counter uint64, name string) []byte {
		b, err := (&profileBody{Version: 1, Counter: counter, Name: name}).encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now()
	receive(envelope.KindProfile, prof(2, "Stranger"), 0, now)
	if p := e.PeerProfile(from); p == nil || p.Name != "Stranger" {
		t.Fatalf("a stranger's profile: %+v", p)
	}
	receive(envelope.KindProfile, prof(1, "Older"), 0, now)
	receive(envelope.KindProfile, prof(3, "bad\x00name"), 0, now)
	if p := e.PeerProfile(from); p.Name != "Stranger" || p.Counter != 2 {
		t.Fatalf("after an older and a malformed profile: %+v", p)
	}
	receive(envelope.KindText, []byte("hi"), 0, now) // makes the message request
	receive(envelope.KindProfile, prof(5, "Carol"), 0, now)
	convs, _ := e.Conversations()
	if len(convs) != 1 || convs[0].ProfileName != "Carol" || convs[0].Name != "" {
		t.Fatalf("conversations %+v", convs)
	}

	receive(envelope.KindTimer, nil, 3600, now.Add(time.Second))
	if got := e.timerOf(from); got != 3600 {
		t.Fatalf("timer %d after the peer set 1 h", got)
	}
	receive(envelope.KindText, []byte("crossed"), 0, now.Add(500*time.Millisecond)) // sent before the change
	if got := e.timerOf(from); got != 3600 {
		t.Fatalf("an older text turned the timer to %d", got)
	}
	receive(envelope.KindText, []byte("newer"), 60, now.Add(2*time.Second))
	if got := e.timerOf(from); got != 60 {
		t.Fatalf("a newer text with a 60 s timer left it at %d", got)
	}
	ms, _ := e.Messages(from)
	var lines, timed int
	for _, m := range ms {
		if m.Kind == KindTimerLine {
			lines++
		}
		if m.Text == "newer" && m.Expire == 60 && m.ExpiresAt.Sub(m.ReceivedAt) == time.Minute {
			timed++
		}
	}
	if lines != 1 || timed != 1 {
		t.Fatalf("%d timer lines and %d timed texts in %+v", lines, timed, ms)
	}
}
