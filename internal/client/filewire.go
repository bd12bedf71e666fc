package client

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/wire"
)

// Attachment states.
const (
	FileUploading   = "uploading"   // ours, its shares going to the nodes
	FileReady       = "ready"       // on the nodes; not (yet) on this device
	FileDownloading = "downloading" // coming from the nodes
	FileDone        = "done"        // whole on this device
	FileFailed      = "failed"      // see Error
)

// Limits on what a message's attachment carries besides the file.
const (
	MaxFileName = 255
	MaxFileType = 127
	MaxThumb    = 32 << 10
	// AutoDownload is the largest image, audio or video fetched as soon
	// as it arrives (so it shows inline); anything else waits for the
	// user.
	AutoDownload = 16 << 20
)

// Attachment is the file a message carries, as the user sees it.
type Attachment struct {
	Name string `json:"name"`
	Type string `json:"type"` // MIME type, as the sender said
	Size int64  `json:"size"`
	// Thumb is a small image the sender made (images and videos); Width,
	// Height and Duration (ms) describe the media, when the sender knew.
	Thumb    []byte `json:"thumb,omitempty"`
	Width    int    `json:"width,omitempty"`
	Height   int    `json:"height,omitempty"`
	Duration int64  `json:"duration_ms,omitempty"`
	State    string `json:"state"`
	// Done is the bytes uploaded or downloaded so far.
	Done  int64  `json:"done,omitempty"`
	Error string `json:"error,omitempty"`
}

// fileBody is a text's Content.File: the manifest and what describes the
// file. It travels inside the end-to-end encryption.
type fileBody struct {
	Manifest []byte `cbor:"1,keyasint"`
	Name     string `cbor:"2,keyasint"`
	Type     string `cbor:"3,keyasint,omitempty"`
	Thumb    []byte `cbor:"4,keyasint,omitempty"`
	Width    int    `cbor:"5,keyasint,omitempty"`
	Height   int    `cbor:"6,keyasint,omitempty"`
	Duration int64  `cbor:"7,keyasint,omitempty"`
}

// FileMeta is what a sender tells of a file besides its bytes.
type FileMeta struct {
	Name     string
	Type     string // MIME; guessed from Name when empty
	Thumb    []byte
	Width    int
	Height   int
	Duration int64 // ms
}

// clean checks and normalizes m: a base name without control
// characters, a MIME type, bounded sizes.
func (m *FileMeta) clean() error {
	name := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, filepath.Base(strings.ReplaceAll(m.Name, "\\", "/")))
	if name == "." || name == "/" || name == "" || name == ".." {
		name = "file"
	}
	if len(name) > MaxFileName {
		ext := filepath.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		name = strings.ToValidUTF8(name[:MaxFileName-len(ext)], "") + ext
	}
	m.Name = name
	if m.Type == "" {
		m.Type = mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
	}
	if m.Type == "" {
		m.Type = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(m.Type); err != nil || len(m.Type) > MaxFileType || !isASCII(m.Type) {
		return fmt.Errorf("file type %q is not a MIME type", m.Type)
	}
	if len(m.Thumb) > MaxThumb {
		return fmt.Errorf("thumbnail of %d KiB (at most %d)", len(m.Thumb)>>10, MaxThumb>>10)
	}
	if m.Width < 0 || m.Height < 0 || m.Duration < 0 || m.Width > 1<<16 || m.Height > 1<<16 {
		return errors.New("bad media size")
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// encodeFileBody encodes a file's body for Content.File, from its encoded
// manifest.
func encodeFileBody(manifest []byte, meta FileMeta) ([]byte, error) {
	return wire.Marshal(&fileBody{Manifest: manifest, Name: meta.Name, Type: meta.Type, Thumb: meta.Thumb,
		Width: meta.Width, Height: meta.Height, Duration: meta.Duration})
}

// parseFileBody decodes and checks a Content.File a peer sent.
func parseFileBody(b []byte) (*files.Manifest, FileMeta, error) {
	var fb fileBody
	if err := wire.Unmarshal(b, &fb); err != nil {
		return nil, FileMeta{}, fmt.Errorf("file: %w", err)
	}
	m, err := files.ParseManifest(fb.Manifest)
	if err != nil {
		return nil, FileMeta{}, err
	}
	if !utf8.ValidString(fb.Name) {
		return nil, FileMeta{}, errors.New("file: name is not UTF-8")
	}
	meta := FileMeta{Name: fb.Name, Type: fb.Type, Thumb: fb.Thumb, Width: fb.Width, Height: fb.Height, Duration: fb.Duration}
	if err := meta.clean(); err != nil {
		return nil, FileMeta{}, err
	}
	return m, meta, nil
}

// attachment is the user's view of a file body.
func (meta FileMeta) attachment(size int64, state string) *Attachment {
	return &Attachment{Name: meta.Name, Type: meta.Type, Size: size, Thumb: meta.Thumb, Width: meta.Width,
		Height: meta.Height, Duration: meta.Duration, State: state}
}

// media reports whether a type shows or plays inline.
func media(typ string) bool {
	for _, p := range []string{"image/", "audio/", "video/"} {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// blobChunk is the size of the pieces a file is kept in, encrypted, in
// the home's database.
const blobChunk = 1 << 20

// blob is a file kept in the KV in pieces of blobChunk bytes, or of the
// size recorded under its piece key (a download's stripe size, so that
// each stripe is written as one piece, with no read-modify-write), so it
// is encrypted at rest like everything else; read and written at any
// offset.
type blob struct {
	kv    KV
	id    string
	size  int64
	piece int64 // 0: blobChunk
}

func blobPrefix(id string) string { return "fblob/" + id + "/" }

func (b *blob) key(i int64) string { return fmt.Sprintf("%s%06d", blobPrefix(b.id), i) }

func pieceKey(id string) string { return blobPrefix(id) + "piece" }

// openBlob is the blob of file id, of size bytes, with its piece size.
func openBlob(kv KV, id string, size int64) *blob {
	b := &blob{kv: kv, id: id, size: size}
	if v, ok, err := kv.Get(pieceKey(id)); err == nil && ok {
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n > 0 {
			b.piece = n
		}
	}
	return b
}

// setPiece records a piece size for a blob not written yet.
func (b *blob) setPiece(n int64) error {
	b.piece = n
	return b.kv.Put(pieceKey(b.id), []byte(strconv.FormatInt(n, 10)))
}

func (b *blob) pieceSize() int64 {
	if b.piece > 0 {
		return b.piece
	}
	return blobChunk
}

// ReadAt reads from the pieces; a missing piece reads as an error.
func (b *blob) ReadAt(p []byte, off int64) (int, error) {
	if off >= b.size {
		return 0, io.EOF
	}
	n, ps := 0, b.pieceSize()
	for n < len(p) && off < b.size {
		i, at := off/ps, off%ps
		v, ok, err := b.kv.Get(b.key(i))
		if err != nil {
			return n, err
		}
		if !ok || int64(len(v)) <= at {
			return n, fmt.Errorf("file %s: piece %d missing", b.id, i)
		}
		c := copy(p[n:], v[at:])
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes into the pieces (reading back a piece it fills in
// part).
func (b *blob) WriteAt(p []byte, off int64) (int, error) {
	n, ps := 0, b.pieceSize()
	for n < len(p) {
		i, at := off/ps, off%ps
		end := min(ps, at+int64(len(p)-n), b.size-i*ps)
		if end <= at {
			return n, fmt.Errorf("file %s: write past its size", b.id)
		}
		piece := make([]byte, end)
		if at > 0 || end < min(ps, b.size-i*ps) {
			if v, ok, err := b.kv.Get(b.key(i)); err != nil {
				return n, err
			} else if ok {
				if int64(len(v)) > end {
					piece = append(piece, make([]byte, int64(len(v))-end)...)
				}
				copy(piece, v)
			}
		}
		c := copy(piece[at:], p[n:])
		if err := b.kv.Put(b.key(i), piece); err != nil {
			return n, err
		}
		n += c
		off += int64(c)
	}
	return n, nil
}

// remove deletes the pieces.
func (b *blob) remove() error {
	keys, err := b.kv.List(blobPrefix(b.id))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.kv.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
