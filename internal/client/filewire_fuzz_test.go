package client

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/wire"
)

// FuzzFileBody: whatever a peer puts in a message's file, parsing ends
// in an error or in a manifest that validates and a description within
// its bounds: a base name without separators or control characters, a
// MIME type, a bounded thumbnail.
func FuzzFileBody(f *testing.F) {
	u, err := files.NewUpload(5000, [][]byte{[]byte("node-a"), []byte("node-b"), []byte("node-c")}, 1<<40)
	if err != nil {
		f.Fatal(err)
	}
	for range u.Params.N {
		u.Shares = append(u.Shares, bytes.Repeat([]byte{7}, 32))
		u.Where = append(u.Where, 1)
	}
	man, err := u.Manifest()
	if err != nil {
		f.Fatal(err)
	}
	for _, meta := range []FileMeta{{Name: "cat.png", Thumb: []byte("t"), Width: 3, Height: 4}, {Name: "../../etc/passwd", Type: "text/plain"}} {
		raw, err := man.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		b, err := encodeFileBody(raw, meta)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	bad, _ := wire.Marshal(&fileBody{Manifest: []byte{1, 2}, Name: "x"})
	f.Add(bad)
	f.Fuzz(func(t *testing.T, in []byte) {
		m, meta, err := parseFileBody(in)
		if err != nil {
			return
		}
		if m.Validate() != nil {
			t.Fatal("a manifest that does not validate was accepted")
		}
		if meta.Name == "" || strings.ContainsAny(meta.Name, "/\\\x00") || len(meta.Name) > MaxFileName || !utf8.ValidString(meta.Name) {
			t.Fatalf("name %q accepted", meta.Name)
		}
		if meta.Type == "" || len(meta.Type) > MaxFileType || len(meta.Thumb) > MaxThumb {
			t.Fatalf("type %q, thumb %d accepted", meta.Type, len(meta.Thumb))
		}
	})
}
