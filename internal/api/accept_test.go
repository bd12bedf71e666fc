package api

import (
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// TestAcceptName: POST /requests/{id}/accept without a body (as the web
// app sends it) accepts without a name; with {"name": ...} it names the
// new contact; a body that is not JSON is refused.
func TestAcceptName(t *testing.T) {
	s, e := engineServer(t)
	newID := func() string {
		a, err := identity.New(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return a.ID().String()
	}
	plain, named := newID(), newID()
	var c client.Contact
	if code, body := call(t, s, s.Token(), http.MethodPost, "/api/v1/requests/"+plain+"/accept", nil, &c); code != http.StatusOK || c.ID != plain || c.Name != "" || c.State != client.ContactAccepted {
		t.Fatalf("accept without a body: %d %s", code, body)
	}
	c = client.Contact{}
	if code, body := call(t, s, s.Token(), http.MethodPost, "/api/v1/requests/"+named+"/accept", map[string]string{"name": " Dave "}, &c); code != http.StatusOK || c.ID != named || c.Name != "Dave" || c.State != client.ContactAccepted {
		t.Fatalf("accept with a name: %d %s", code, body)
	}
	cs, err := e.Contacts()
	if err != nil || len(cs) != 2 {
		t.Fatalf("contacts after two accepts: %v, %v", cs, err)
	}
	if code, _ := call(t, s, s.Token(), http.MethodPost, "/api/v1/requests/"+newID()+"/accept", "not an object", nil); code != http.StatusBadRequest {
		t.Errorf("accept with a bad body: %d, want 400", code)
	}
}
