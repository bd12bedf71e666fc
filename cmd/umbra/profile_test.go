package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/api"
)

func TestParseTimer(t *testing.T) {
	for in, want := range map[string]time.Duration{"off": 0, "0": 0, "5s": 5 * time.Second, "1h": time.Hour, "1d": 24 * time.Hour, "4w": 28 * 24 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseTimer(in); err != nil || got != want {
			t.Errorf("parseTimer(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"4s", "5w", "29d", "1.5s", "soon", "-1h", ""} {
		if _, err := parseTimer(bad); err == nil {
			t.Errorf("parseTimer(%q) accepted", bad)
		}
	}
	for d, want := range map[time.Duration]string{0: "off", time.Hour: "1 hour", 10 * time.Second: "10 seconds", 7 * 24 * time.Hour: "1 week", 90 * time.Minute: "90 minutes"} {
		if got := timerText(d); got != want {
			t.Errorf("timerText(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestProfileCommand: 'profile set' sets the name and a scaled avatar from
// a file, 'profile show --json' shows them, --clear-avatar removes it.
func TestProfileCommand(t *testing.T) {
	t.Setenv("UMBRA_PASSPHRASE", "")
	t.Setenv("UMBRA_HOME", "")
	home := filepath.Join(t.TempDir(), "home")
	if _, errOut, err := run(t, "init", "--home", home, "--network", offlineNetwork(t, 1), "--json"); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	var jb bytes.Buffer
	jpeg.Encode(&jb, image.NewRGBA(image.Rect(0, 0, 640, 480)), nil)
	file := filepath.Join(t.TempDir(), "me.jpg")
	if err := os.WriteFile(file, jb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := run(t, "profile", "set", "--home", home, "--name", "Alice", "--avatar", file); err != nil || !strings.Contains(out, "name:    Alice") {
		t.Fatalf("profile set: %q %v\n%s", out, err, errOut)
	}
	out, errOut, err := run(t, "profile", "show", "--home", home, "--json")
	if err != nil {
		t.Fatalf("profile show: %v\n%s", err, errOut)
	}
	var p api.ProfileJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Name != "Alice" || !strings.HasPrefix(p.Avatar, "data:image/") {
		t.Fatalf("profile show --json: %q %v", out, err)
	}
	if _, _, err := run(t, "profile", "set", "--home", home, "--name", "bad\x1bname"); err == nil {
		t.Fatal("a name with a control character was accepted")
	}
	if _, _, err := run(t, "profile", "set", "--home", home); err == nil {
		t.Fatal("profile set without flags succeeded")
	}
	if out, _, err := run(t, "profile", "set", "--home", home, "--clear-avatar"); err != nil || !strings.Contains(out, "avatar:  none") || !strings.Contains(out, "Alice") {
		t.Fatalf("profile set --clear-avatar: %q %v", out, err)
	}
}
