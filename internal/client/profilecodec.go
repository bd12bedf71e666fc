package client

// Profiles on the wire, and the checks on names and avatars.
//
// A profile travels as the Body of a KindProfile content, inside the
// end-to-end encryption: a CBOR map (profileBody) with a format version, a
// counter the sender raises with every change (a receiver keeps only a
// newer one, so a replayed or reordered old profile changes nothing), the
// display name and the avatar image. Both sides hold the same bounds: a
// name is at most MaxProfileName bytes of UTF-8 without control or
// bidirectional-override characters; an avatar is a PNG or JPEG of at most
// MaxAvatarBytes and MaxAvatarSide pixels a side. The sender makes its
// avatar so (NormalizeAvatar: the image's size is read from its header
// before anything is decoded, it is scaled down and re-encoded, which also
// drops any metadata); a receiver refuses a profile that breaks a bound.

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	imgdraw "image/draw"
	_ "image/gif" // avatars may be uploaded as GIF (the first frame is kept)
	"image/jpeg"
	"image/png"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/umbra-im/umbra/internal/wire"
)

// Bounds on profiles.
const (
	MaxProfileName = 64       // bytes of UTF-8
	MaxAvatarBytes = 32 << 10 // an encoded avatar
	MaxAvatarSide  = 96       // pixels, width and height
	// MaxAvatarUpload bounds the image a user hands in to become an avatar.
	MaxAvatarUpload = 8 << 20
	// maxUploadPixels bounds the decoded size of an upload (width times
	// height), checked from its header before decoding.
	maxUploadPixels = 4096 * 4096
	profileVersion  = 1
	// maxProfileBody bounds an encoded profile.
	maxProfileBody = MaxAvatarBytes + MaxProfileName + 64
)

// profileBody is the Body of a KindProfile content.
type profileBody struct {
	Version uint   `cbor:"1,keyasint"`
	Counter uint64 `cbor:"2,keyasint"`
	Name    string `cbor:"3,keyasint,omitempty"`
	Avatar  []byte `cbor:"4,keyasint,omitempty"`
}

func (p *profileBody) encode() ([]byte, error) { return wire.Marshal(p) }

// parseProfile decodes and checks a profile a peer sent.
func parseProfile(data []byte) (*profileBody, error) {
	if len(data) > maxProfileBody {
		return nil, fmt.Errorf("profile of %d bytes, limit %d", len(data), maxProfileBody)
	}
	var p profileBody
	if err := wire.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if p.Version != profileVersion {
		return nil, fmt.Errorf("profile version %d", p.Version)
	}
	if err := CheckProfileName(p.Name); err != nil {
		return nil, err
	}
	if len(p.Avatar) > 0 {
		if _, err := CheckAvatar(p.Avatar); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// CheckProfileName reports a display name that breaks the bounds: longer
// than MaxProfileName bytes, not UTF-8, with control or bidirectional
// formatting characters, or with spaces around it.
func CheckProfileName(name string) error {
	switch {
	case len(name) > MaxProfileName:
		return fmt.Errorf("the name is %d bytes long; the limit is %d", len(name), MaxProfileName)
	case !utf8.ValidString(name):
		return errors.New("the name is not valid UTF-8")
	case strings.TrimSpace(name) != name:
		return errors.New("the name starts or ends with spaces")
	}
	for _, r := range name {
		if unicode.IsControl(r) || isBidiControl(r) || r == utf8.RuneError {
			return fmt.Errorf("the name holds the control character %U", r)
		}
	}
	return nil
}

// isBidiControl reports the characters that reorder text around them (a
// name could otherwise make the words after it read backwards).
func isBidiControl(r rune) bool {
	return r == 0x061C || r == 0x200E || r == 0x200F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// CheckAvatar checks an avatar as a receiver does: at most MaxAvatarBytes,
// a PNG or JPEG whose header says at most MaxAvatarSide pixels a side,
// which then decodes. It returns the image's MIME type.
func CheckAvatar(data []byte) (string, error) {
	if len(data) > MaxAvatarBytes {
		return "", fmt.Errorf("avatar of %d bytes, limit %d", len(data), MaxAvatarBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("avatar: %w", err)
	}
	if format != "png" && format != "jpeg" {
		return "", fmt.Errorf("avatar: %s images are not accepted", format)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxAvatarSide || cfg.Height > MaxAvatarSide {
		return "", fmt.Errorf("avatar of %dx%d pixels, limit %dx%d", cfg.Width, cfg.Height, MaxAvatarSide, MaxAvatarSide)
	}
	if _, _, err := image.Decode(bytes.NewReader(data)); err != nil {
		return "", fmt.Errorf("avatar: %w", err)
	}
	return "image/" + format, nil
}

// NormalizeAvatar turns an uploaded PNG, JPEG or GIF into an avatar: its
// size is checked from the header first (a small file can claim a huge
// image), then it is decoded, scaled down to fit MaxAvatarSide (keeping
// its aspect) and re-encoded as PNG, or JPEG when the PNG is too large.
// Re-encoding keeps the pixels only: no metadata survives.
func NormalizeAvatar(data []byte) ([]byte, error) { return normalizeAvatar(data, MaxAvatarBytes) }

// normalizeAvatar is NormalizeAvatar with limit bytes for the result.
func normalizeAvatar(data []byte, limit int) ([]byte, error) {
	if len(data) > MaxAvatarUpload {
		return nil, fmt.Errorf("the image is %d MiB; the limit is %d MiB", len(data)>>20, MaxAvatarUpload>>20)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a PNG, JPEG or GIF image: %w", err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > 16384 || cfg.Height > 16384 || cfg.Width*cfg.Height > maxUploadPixels {
		return nil, fmt.Errorf("the image is %dx%d pixels; the limit is %d pixels in all", cfg.Width, cfg.Height, maxUploadPixels)
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the image does not decode: %w", err)
	}
	img := scaleDown(src, MaxAvatarSide)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	if buf.Len() <= limit {
		return buf.Bytes(), nil
	}
	// Too large as PNG (a photo): JPEG on white, lowering the quality
	// until it fits.
	flat := image.NewRGBA(img.Bounds())
	imgdraw.Draw(flat, flat.Bounds(), image.NewUniform(color.White), image.Point{}, imgdraw.Src)
	imgdraw.Draw(flat, flat.Bounds(), img, img.Bounds().Min, imgdraw.Over)
	for q := 90; q >= 10; q -= 10 {
		buf.Reset()
		if err := jpeg.Encode(&buf, flat, &jpeg.Options{Quality: q}); err != nil {
			return nil, err
		}
		if buf.Len() <= limit {
			return buf.Bytes(), nil
		}
	}
	return nil, errors.New("the image does not fit an avatar")
}

// scaleDown returns src scaled to fit side x side pixels (never up), each
// output pixel the average of the source pixels it covers.
func scaleDown(src image.Image, side int) *image.NRGBA {
	b := src.Bounds()
	w, hgt := b.Dx(), b.Dy()
	dw, dh := w, hgt
	if w > side || hgt > side {
		if w >= hgt {
			dw, dh = side, max(1, hgt*side/w)
		} else {
			dw, dh = max(1, w*side/hgt), side
		}
	}
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		y0, y1 := b.Min.Y+y*hgt/dh, b.Min.Y+max((y+1)*hgt/dh, y*hgt/dh+1)
		for x := range dw {
			x0, x1 := b.Min.X+x*w/dw, b.Min.X+max((x+1)*w/dw, x*w/dw+1)
			var r, g, bl, a, n uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					c := color.NRGBA64Model.Convert(src.At(sx, sy)).(color.NRGBA64)
					// Weight the colour by alpha, so transparent pixels
					// do not darken the edges.
					r += uint64(c.R) * uint64(c.A)
					g += uint64(c.G) * uint64(c.A)
					bl += uint64(c.B) * uint64(c.A)
					a += uint64(c.A)
					n++
				}
			}
			var px color.NRGBA
			if a > 0 {
				px = color.NRGBA{R: uint8(r / a >> 8), G: uint8(g / a >> 8), B: uint8(bl / a >> 8), A: uint8(a / n >> 8)}
			}
			dst.SetNRGBA(x, y, px)
		}
	}
	return dst
}
