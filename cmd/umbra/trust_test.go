package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// TestTrustCommands: 'contacts verify' prints the number both sides share
// (with a QR code), --mark/--unmark and --json; block, list --blocked,
// unblock by name; mute; chats delete. On an offline home (no daemon).
func TestTrustCommands(t *testing.T) {
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_HOME", "")
	netFile := offlineNetwork(t, 1)
	home := filepath.Join(t.TempDir(), "alice")
	out, errOut, err := run(t, "init", "--home", home, "--network", netFile, "--json")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	var created map[string]string
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	me, err := identity.ParseAccountID(created["account_id"])
	if err != nil {
		t.Fatal(err)
	}
	bobAcct, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	bob := bobAcct.ID().String()
	must := func(args ...string) string {
		t.Helper()
		out, errOut, err := run(t, append(args, "--home", home)...)
		if err != nil {
			t.Fatalf("umbra %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	must("contacts", "add", bob, "--name", "Bob")

	want := client.SafetyNumberOf(me, bobAcct.ID())
	out = must("contacts", "verify", "bob")
	groups := client.GroupSafetyNumber(want)
	if !strings.Contains(out, strings.Join(groups[:4], "  ")) || !strings.Contains(out, strings.Join(groups[8:], "  ")) {
		t.Fatalf("verify printed %q, want the groups of %s", out, want)
	}
	if !strings.Contains(out, "▀") || !strings.Contains(out, "Not verified") {
		t.Errorf("verify printed no QR code or no status: %q", out)
	}
	if out := must("contacts", "verify", "Bob", "--no-qr"); strings.Contains(out, "▀") {
		t.Errorf("--no-qr drew a QR code")
	}
	if out := must("contacts", "verify", "Bob", "--mark", "--no-qr"); !strings.Contains(out, "Marked verified") {
		t.Errorf("--mark printed %q", out)
	}
	var sn client.SafetyNumber
	if err := json.Unmarshal([]byte(must("contacts", "verify", "Bob", "--json")), &sn); err != nil || sn.Number != want || !sn.Verified || len(sn.Groups) != 12 {
		t.Fatalf("verify --json: %+v, %v", sn, err)
	}
	if out := must("contacts", "list"); !strings.Contains(out, "verified") {
		t.Errorf("contacts list does not show the mark: %q", out)
	}
	must("contacts", "verify", "Bob", "--unmark")
	if err := json.Unmarshal([]byte(must("contacts", "verify", "Bob", "--json")), &sn); err != nil || sn.Verified {
		t.Fatalf("still verified after --unmark: %+v, %v", sn, err)
	}
	if _, _, err := run(t, "contacts", "verify", "Bob", "--mark", "--unmark", "--home", home); err == nil {
		t.Error("--mark --unmark accepted")
	}

	if out := must("contacts", "mute", "Bob"); !strings.Contains(out, "Muted") {
		t.Errorf("mute printed %q", out)
	}
	if out := must("contacts", "list"); !strings.Contains(out, "muted") {
		t.Errorf("contacts list does not show muted: %q", out)
	}
	must("contacts", "unmute", "Bob")

	must("contacts", "block", "Bob")
	if out := must("contacts", "list", "--blocked"); !strings.Contains(out, bob) {
		t.Errorf("list --blocked: %q", out)
	}
	if out := must("contacts", "list"); strings.Contains(out, bob) {
		t.Errorf("a blocked account is listed among contacts: %q", out)
	}
	if out := must("contacts", "unblock", "Bob"); !strings.Contains(out, "a contact again") {
		t.Errorf("unblock by name printed %q", out)
	}
	if out := must("contacts", "list", "--blocked"); !strings.Contains(out, "No blocked accounts") {
		t.Errorf("list --blocked after unblocking: %q", out)
	}

	var del map[string]any
	if err := json.Unmarshal([]byte(must("chats", "delete", "Bob", "--json")), &del); err != nil || del["peer"] != bob || del["deleted"] != float64(0) {
		t.Fatalf("chats delete --json: %v, %v", del, err)
	}
	if out := must("contacts", "list"); !strings.Contains(out, bob) {
		t.Errorf("chats delete removed the contact: %q", out)
	}
}
