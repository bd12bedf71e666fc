package api

import (
	"bytes"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// TestProfileEndpoint: GET/PUT /api/v1/profile need the token, set the
// name and a (scaled) avatar, refuse bad names and junk images, and clear
// the avatar; the timer endpoint checks its bounds and the contact.
func TestProfileEndpoint(t *testing.T) {
	s, e := engineServer(t)
	if code, _ := call(t, s, "", http.MethodGet, "/api/v1/profile", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("GET without the token: %d", code)
	}
	if code, _ := call(t, s, "", http.MethodPut, "/api/v1/profile", map[string]string{"name": "x"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("PUT without the token: %d", code)
	}
	var p ProfileJSON
	if code, body := call(t, s, s.Token(), http.MethodGet, "/api/v1/profile", nil, &p); code != http.StatusOK || p.Name != "" || p.Version != 0 || p.AccountID != e.AccountID() {
		t.Fatalf("GET: %d %s", code, body)
	}
	var img bytes.Buffer
	png.Encode(&img, image.NewGray(image.Rect(0, 0, 200, 100)))
	code, body := call(t, s, s.Token(), http.MethodPut, "/api/v1/profile", map[string]any{"name": " Alice ", "avatar": img.Bytes()}, &p)
	if code != http.StatusOK || p.Name != "Alice" || !strings.HasPrefix(p.Avatar, "data:image/png;base64,") || p.Version != 1 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if got, _ := e.Profile(); got.Name != "Alice" || len(got.Avatar) == 0 {
		t.Fatalf("the engine holds %+v", got)
	}
	for _, bad := range []map[string]any{
		{"name": strings.Repeat("n", client.MaxProfileName+1)},
		{"name": "a\x07b"},
		{"avatar": []byte("not an image")},
		{"colour": "red"},
	} {
		if code, body := call(t, s, s.Token(), http.MethodPut, "/api/v1/profile", bad, nil); code != http.StatusBadRequest {
			t.Errorf("PUT %v: %d %s, want 400", bad, code, body)
		}
	}
	// Only the avatar goes; the name stays.
	p = ProfileJSON{}
	if code, body := call(t, s, s.Token(), http.MethodPut, "/api/v1/profile", map[string]any{"clear_avatar": true}, &p); code != http.StatusOK || p.Name != "Alice" || p.Avatar != "" || p.Version != 2 {
		t.Fatalf("clear: %d %s", code, body)
	}

	// Timers: bounds, and contacts only.
	peer, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/conversations/" + peer.ID().String() + "/timer"
	for _, bad := range []map[string]any{{}, {"seconds": -1}, {"seconds": 4}, {"seconds": 28*24*3600 + 1}} {
		if code, body := call(t, s, s.Token(), http.MethodPut, path, bad, nil); code != http.StatusBadRequest {
			t.Errorf("timer %v: %d %s, want 400", bad, code, body)
		}
	}
	if code, body := call(t, s, s.Token(), http.MethodPut, path, map[string]int{"seconds": 3600}, nil); code != http.StatusBadRequest || !strings.Contains(body, "contact") {
		t.Errorf("timer with a stranger: %d %s, want 400", code, body)
	}
}
