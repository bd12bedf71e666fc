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
