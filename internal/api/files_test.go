package api

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/memswarm"
)

// postFile sends a multipart file form to s.
func postFile(t *testing.T, s *Server, fields map[string]string, name string, data []byte) (int, string, client.Message) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data)
	mw.Close()
	req := newRequest(t, s, s.Token(), http.MethodPost, "/api/v1/files", nil)
	req.Body = io.NopCloser(&body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	rec := serve(s, req)
	var m client.Message
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
	}
	return rec.Code, rec.Body.String(), m
}

// getFile reads a message's file from s.
func getFile(t *testing.T, s *Server, id, query string) *httptest.ResponseRecorder {
	t.Helper()
	return serve(s, newRequest(t, s, s.Token(), http.MethodGet, "/api/v1/messages/"+id+"/file"+query, nil))
}

// TestFilesAPI: a file sent as a form reaches bob; an image shows inline
// at once, another file comes when asked; what is served never runs in
// the UI's origin (an HTML file is a download of bytes, sandboxed).
func TestFilesAPI(t *testing.T) {
	sw := memswarm.New(memswarm.Options{})
	ae, be := swarmEngine(t, sw, "alice"), swarmEngine(t, sw, "bob")
	alice, bob := ae.AccountID(), be.AccountID()
	ae.AddContact(bob, "")
	be.AddContact(alice, "")
	as, bs := newServer(t, ae), newServer(t, be)
	eventually(t, "a first send", func() bool {
		code, _ := call(t, as, as.Token(), http.MethodPost, "/api/v1/messages", map[string]string{"to": bob, "text": "hello"}, nil)
		return code == http.StatusOK
	})
	if code, body, _ := postFile(t, as, map[string]string{"caption": "x"}, "a.txt", []byte("x")); code != http.StatusBadRequest || !strings.Contains(body, "recipient") {
		t.Errorf("no recipient: %d %s", code, body)
	}
	pic := make([]byte, 80<<10)
	rand.Read(pic)
	code, body, m := postFile(t, as, map[string]string{"to": bob, "caption": "look", "thumb": "tiny", "width": "64", "height": "48"}, "cat.png", pic)
	if code != http.StatusOK || m.File == nil || m.File.Type != "image/png" || m.File.Width != 64 || m.File.State != client.FileUploading {
		t.Fatalf("send an image: %d %s", code, body)
	}
	page := []byte("<html><script>alert(1)</script></html>")
	_, _, doc := postFile(t, as, map[string]string{"to": bob}, "page.html", page)
	eventually(t, "the image at bob's, fetched by itself", func() bool {
		rec := getFile(t, bs, m.ID, "")
		return rec.Code == http.StatusOK && bytes.Equal(rec.Body.Bytes(), pic)
	})
	rec := getFile(t, bs, m.ID, "")
	if h := rec.Header(); h.Get("Content-Type") != "image/png" || !strings.HasPrefix(h.Get("Content-Disposition"), "inline") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("image headers: %v", h)
	}
	eventually(t, "the page's message at bob's", func() bool {
		mm, _ := be.Message("", doc.ID)
		return mm != nil && mm.File != nil && mm.File.State == client.FileReady
	})
	if rec := getFile(t, bs, doc.ID, ""); rec.Code != http.StatusNotFound {
		t.Errorf("a file not fetched yet: %d", rec.Code)
	}
	if code, body := call(t, bs, bs.Token(), http.MethodPost, "/api/v1/messages/"+doc.ID+"/download", nil, nil); code != http.StatusOK {
		t.Fatalf("download: %d %s", code, body)
	}
	eventually(t, "the page fetched", func() bool { return getFile(t, bs, doc.ID, "").Code == http.StatusOK })
	rec = getFile(t, bs, doc.ID, "")
	if h := rec.Header(); h.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") ||
		!bytes.Equal(rec.Body.Bytes(), page) {
		t.Errorf("html file served as %v", h)
	}
}
