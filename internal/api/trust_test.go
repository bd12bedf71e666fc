package api

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// TestTrustAPI: safety number (with its QR), verified, mute, block and
// unblock of a contact, the blocked list, deleting a conversation, and the
// errors a client can cause.
func TestTrustAPI(t *testing.T) {
	s, e := engineServer(t)
	tok := s.Token()
	a, err := identity.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bob := a.ID().String()
	if _, err := e.AddContact(bob, "Bob"); err != nil {
		t.Fatal(err)
	}
	base := "/api/v1/contacts/" + bob

	var sn SafetyNumberAnswer
	if code, body := call(t, s, tok, http.MethodGet, base+"/safety-number", nil, &sn); code != http.StatusOK {
		t.Fatalf("safety number: %d %s", code, body)
	}
	mine, _ := identity.ParseAccountID(e.AccountID())
	if want := client.SafetyNumberOf(a.ID(), mine); sn.Number != want || len(sn.Groups) != 12 || sn.Verified || sn.Name != "Bob" {
		t.Fatalf("safety number %+v, want %s", sn.SafetyNumber, want)
	}
	if sn.QR == nil || sn.QR.Text != sn.Number || sn.QR.Size == 0 {
		t.Fatalf("QR %+v: want the 60 digits", sn.QR)
	}

	var c client.Contact
	if code, body := call(t, s, tok, http.MethodPut, base+"/verified", map[string]bool{"verified": true}, &c); code != http.StatusOK || !c.Verified {
		t.Fatalf("verify: %d %s", code, body)
	}
	if code, _ := call(t, s, tok, http.MethodPut, base+"/verified", map[string]string{}, nil); code != http.StatusBadRequest {
		t.Errorf("verify without a value: %d, want 400", code)
	}
	if code, body := call(t, s, tok, http.MethodPut, base+"/muted", map[string]bool{"muted": true}, &c); code != http.StatusOK || !c.Muted {
		t.Fatalf("mute: %d %s", code, body)
	}
	var convs []client.Conversation
	if code, _ := call(t, s, tok, http.MethodGet, "/api/v1/conversations", nil, &convs); code != http.StatusOK || len(convs) != 1 || !convs[0].Verified || !convs[0].Muted {
		t.Fatalf("conversations %+v: want bob verified and muted", convs)
	}

	if code, body := call(t, s, tok, http.MethodPost, base+"/block", nil, nil); code != http.StatusOK {
		t.Fatalf("block: %d %s", code, body)
	}
	var bl []client.Contact
	if code, _ := call(t, s, tok, http.MethodGet, "/api/v1/blocked", nil, &bl); code != http.StatusOK || len(bl) != 1 || bl[0].ID != bob {
		t.Fatalf("blocked list %+v", bl)
	}
	if cs, _ := e.Contacts(); len(cs) != 0 {
		t.Fatalf("a blocked account is still listed as a contact: %+v", cs)
	}
	if code, body := call(t, s, tok, http.MethodPost, base+"/unblock", nil, &c); code != http.StatusOK || c.State != client.ContactAccepted {
		t.Fatalf("unblock: %d %s", code, body)
	}
	if code, body := call(t, s, tok, http.MethodPost, base+"/unblock", nil, nil); code != http.StatusBadRequest || !strings.Contains(body, "not blocked") {
		t.Errorf("unblock twice: %d %s", code, body)
	}

	var del map[string]int
	if code, body := call(t, s, tok, http.MethodDelete, "/api/v1/conversations/"+bob, nil, &del); code != http.StatusOK || del["deleted"] != 0 {
		t.Fatalf("delete conversation: %d %s", code, body)
	}
	if cs, _ := e.Contacts(); len(cs) != 1 {
		t.Fatalf("deleting the chat removed the contact: %+v", cs)
	}

	// Bad IDs and unknown accounts.
	if code, body := call(t, s, tok, http.MethodGet, "/api/v1/contacts/umbra1nope/safety-number", nil, nil); code != http.StatusBadRequest || !strings.Contains(body, "account ID") {
		t.Errorf("bad ID: %d %s", code, body)
	}
	if code, _ := call(t, s, tok, http.MethodGet, "/api/v1/contacts/"+e.AccountID()+"/safety-number", nil, nil); code != http.StatusBadRequest {
		t.Errorf("own ID: %d, want 400", code)
	}
	other, _ := identity.New(rand.Reader)
	if code, body := call(t, s, tok, http.MethodPut, "/api/v1/contacts/"+other.ID().String()+"/muted", map[string]bool{"muted": true}, nil); code != http.StatusBadRequest || !strings.Contains(body, "not in your contacts") {
		t.Errorf("mute a stranger: %d %s", code, body)
	}
	// Block works on anyone, strangers too; unblocking a stranger makes a contact.
	if code, _ := call(t, s, tok, http.MethodPost, "/api/v1/contacts/"+other.ID().String()+"/block", nil, nil); code != http.StatusOK {
		t.Errorf("block a stranger: %d", code)
	}
}
