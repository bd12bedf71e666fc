package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
)

// TestSettingsEndpoint: GET and PUT /api/v1/settings need the token, read
// receipts default on, a PUT changes what it names and is kept, and an
// unknown setting is refused.
func TestSettingsEndpoint(t *testing.T) {
	s, e := engineServer(t)
	for _, m := range []string{http.MethodGet, http.MethodPut} {
		if code, _ := call(t, s, "", m, "/api/v1/settings", map[string]bool{"read_receipts": false}, nil); code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d, want 401", m, code)
		}
		if code, _ := call(t, s, "wrong", m, "/api/v1/settings", map[string]bool{"read_receipts": false}, nil); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d, want 401", m, code)
		}
	}
	if st, _ := e.Settings(); !st.ReadReceipts {
		t.Fatal("a request without the token changed the settings")
	}
	var st client.Settings
	if code, body := call(t, s, s.Token(), http.MethodGet, "/api/v1/settings", nil, &st); code != http.StatusOK || !st.ReadReceipts {
		t.Fatalf("GET: %d %s: want read receipts on", code, body)
	}
	st = client.Settings{ReadReceipts: true}
	if code, body := call(t, s, s.Token(), http.MethodPut, "/api/v1/settings", map[string]bool{"read_receipts": false}, &st); code != http.StatusOK || st.ReadReceipts {
		t.Fatalf("PUT off: %d %s", code, body)
	}
	if got, _ := e.Settings(); got.ReadReceipts {
		t.Fatal("the engine still sends read receipts")
	}
	// An empty body changes nothing.
	if code, body := call(t, s, s.Token(), http.MethodPut, "/api/v1/settings", map[string]any{}, &st); code != http.StatusOK || st.ReadReceipts {
		t.Fatalf("PUT {}: %d %s", code, body)
	}
	code, body := call(t, s, s.Token(), http.MethodPut, "/api/v1/settings", map[string]bool{"no_such_setting": true}, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "no_such_setting") {
		t.Fatalf("an unknown setting: %d %s, want 400 naming it", code, body)
	}
	if code, body := call(t, s, s.Token(), http.MethodPut, "/api/v1/settings", map[string]string{"read_receipts": "maybe"}, nil); code != http.StatusBadRequest {
		t.Fatalf("a bad value: %d %s", code, body)
	}
	if code, body := call(t, s, s.Token(), http.MethodGet, "/api/v1/settings", nil, &st); code != http.StatusOK || st.ReadReceipts {
		t.Fatalf("GET after PUT: %d %s", code, body)
	}
	// Without an account there are no settings.
	none := newServer(t, nil)
	if code, _ := call(t, none, none.Token(), http.MethodGet, "/api/v1/settings", nil, nil); code != http.StatusConflict {
		t.Fatalf("GET without an account: %d, want 409", code)
	}
}
