package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/node"
	"github.com/umbra-im/umbra/internal/node/nodetest"
)

// idForms are the ways an account ID could show in a file: its text form
// in either case, with and without the prefix, the base32 of the key
// alone (the text's first 51 characters after the prefix), the raw 32-byte
// public key, and its hex and base64.
func idForms(id identity.AccountID) map[string][]byte {
	s := id.String()
	body := strings.TrimPrefix(s, identity.AccountIDPrefix)
	forms := map[string][]byte{}
	for name, v := range map[string]string{
		"text": s, "TEXT": strings.ToUpper(s), "body": body, "BODY": strings.ToUpper(body),
		"base32 key": body[:51], "BASE32 KEY": strings.ToUpper(body[:51]),
		"hex": hex.EncodeToString(id[:]), "HEX": strings.ToUpper(hex.EncodeToString(id[:])),
		"base64": base64.StdEncoding.EncodeToString(id[:]), "base64url": base64.RawURLEncoding.EncodeToString(id[:]),
	} {
		forms[name] = []byte(v)
	}
	forms["raw key"] = id[:]
	return forms
}

// scanHome fails the test if any file under home (names and raw bytes,
// recursively) holds any form of any of ids; it returns how many files it
// read.
func scanHome(t *testing.T, home, when string, ids map[string]identity.AccountID) int {
	t.Helper()
	files := 0
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(home, path)
		for who, id := range ids {
			for form, b := range idForms(id) {
				if bytes.Contains([]byte(rel), b) {
					t.Errorf("%s: the file name %s holds %s's account ID (%s)", when, rel, who, form)
				}
			}
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		t.Logf("%s: %s (%d bytes)", when, rel, len(data))
		for who, id := range ids {
			for form, b := range idForms(id) {
				if i := bytes.Index(data, b); i >= 0 {
					t.Errorf("%s: %s holds %s's account ID (%s) at byte %d", when, rel, who, form, i)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestHomeOpaque: nothing in a home folder names its account or its
// contacts in the clear. Two accounts made with 'umbra init' (one with a
// passphrase, one without) add each other and exchange messages, one from
// a daemon; every file of both homes is scanned while the daemon runs
// (database, WAL, daemon.json, lock, network.txt) and after everything
// stopped, for every form of both account IDs.
func TestHomeOpaque(t *testing.T) {
	t.Setenv("UMBRA_HOME", "")
	dir := t.TempDir()
	addrs := inProcessNodes(t, 7)
	netFile := filepath.Join(dir, "network.txt")
	if err := os.WriteFile(netFile, []byte(strings.Join(addrs, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the nodes learn of each other

	const alicePass = "alice's passphrase"
	aliceHome, bobHome := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	initHome := func(home, pass string) identity.AccountID {
		t.Setenv("UMBRA_PASSPHRASE", pass)
		out, errOut, err := run(t, "init", "--home", home, "--network", netFile, "--json")
		if err != nil {
			t.Fatalf("init %s: %v\n%s", home, err, errOut)
		}
		var o map[string]string
		if err := json.Unmarshal([]byte(out), &o); err != nil {
			t.Fatal(err)
		}
		id, err := identity.ParseAccountID(o["account_id"])
		if err != nil {
			t.Fatal(err)
		}
		scanHome(t, home, "after init", map[string]identity.AccountID{"the new account": id})
		// 'umbra id' reads it from the database, with the passphrase.
		got, errOut, err := run(t, "id", "--home", home)
		if err != nil || strings.TrimSpace(got) != id.String() {
			t.Fatalf("umbra id: %q, %v (%s); want %s", got, err, errOut, id)
		}
		return id
	}
	aliceID, bobID := initHome(aliceHome, alicePass), initHome(bobHome, "")
	ids := map[string]identity.AccountID{"alice": aliceID, "bob": bobID}

	// 'umbra id' on a protected home without its passphrase fails: the ID
	// is nowhere else to read.
	t.Setenv("UMBRA_PASSPHRASE", "")
	if out, _, err := run(t, "id", "--home", aliceHome); err == nil {
		t.Fatalf("umbra id on a protected home without the passphrase printed %q", out)
	}

	// The clear copy older versions kept goes at the next 'umbra id'.
	legacy := filepath.Join(bobHome, legacyIDFile)
	if err := os.WriteFile(legacy, []byte(bobID.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := run(t, "id", "--home", bobHome); err != nil {
		t.Fatalf("umbra id: %v (%s)", err, errOut)
	}
	if _, err := os.Stat(legacy); err == nil {
		t.Fatalf("'umbra id' left the clear copy %s", legacyIDFile)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := startDaemon(ctx, daemonConfig{Home: aliceHome, Listen: "127.0.0.1:0", Passphrase: alicePass, Log: quietTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	alice := d.srv.Engine()
	if alice == nil {
		t.Fatal("the daemon opened no engine")
	}
	bob, err := client.Open(ctx, client.Config{Home: bobHome, Logger: quietTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	bob.Start()
	defer bob.Close()
	if _, err := alice.AddContact(bobID.String(), "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddContact(aliceID.String(), "alice"); err != nil {
		t.Fatal(err)
	}
	waitUntil := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if f() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	waitUntil("alice's first send", func() bool { _, err := alice.Send(ctx, bobID.String(), "hello bob"); return err == nil })
	waitUntil("bob to receive", func() bool { ms, _ := bob.Messages(aliceID.String()); return len(ms) == 1 })
	if _, err := bob.Send(ctx, aliceID.String(), "hello alice"); err != nil {
		t.Fatal(err)
	}
	waitUntil("alice to receive", func() bool { ms, _ := alice.Messages(bobID.String()); return len(ms) == 2 })

	if _, err := os.Stat(filepath.Join(aliceHome, client.DaemonFile)); err != nil {
		t.Fatalf("the running daemon wrote no %s: %v", client.DaemonFile, err)
	}
	running := scanHome(t, aliceHome, "daemon running", ids) + scanHome(t, bobHome, "engine running", ids)
	d.Stop()
	bob.Close()
	stopped := scanHome(t, aliceHome, "stopped", ids) + scanHome(t, bobHome, "stopped", ids)
	// The scan read the homes' files: the database (and its WAL while
	// open), network.txt, lock, daemon.json while the daemon ran.
	if running < 7 || stopped < 5 {
		t.Fatalf("scanned %d files while running and %d stopped: too few to have read the homes", running, stopped)
	}
	if _, err := os.Stat(filepath.Join(aliceHome, legacyIDFile)); err == nil {
		t.Fatalf("the home holds %s", legacyIDFile)
	}
}

// inProcessNodes starts n nodes in this process on 127.0.0.1, each
// bootstrapped from the ones before it, stopped when the test ends, and
// returns their addresses (a network file's lines).
func inProcessNodes(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var addrs []string
	for i := 0; i < n; i++ {
		nd, err := node.New(nodetest.Config(dir, i, addrs))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close() })
		addrs = append(addrs, nd.Addrs()[0])
	}
	return addrs
}
