package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// fileOf is the file of message id in u's conversation with peer.
func fileOf(t *testing.T, u *user, peer, id string) *client.Attachment {
	t.Helper()
	m, err := u.e.Message(peer, id)
	if err != nil || m == nil {
		return nil
	}
	return m.File
}

// readFile reads message id's file from u's home.
func readFile(t *testing.T, u *user, id string) []byte {
	t.Helper()
	r, _, err := u.e.OpenFile(id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFileSendAndDownload: alice sends bob a 3 MiB file with a caption;
// her message goes once its shares are on the nodes, and bob, asked,
// fetches it with 4 of the 12 share nodes down and gets it byte for
// byte. An image is fetched without asking. The nodes hold at most 1.6×
// the file.
func TestFileSendAndDownload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		sendFirst(t, ctx, alice, bob, "hi")

		data := make([]byte, 3<<20+777)
		rand.Read(data)
		m, err := alice.e.SendFile(ctx, bob.id, bytes.NewReader(data), client.FileMeta{Name: "../report.bin"}, "the report")
		if err != nil {
			t.Fatal(err)
		}
		if m.File == nil || m.File.State != client.FileUploading || m.File.Name != "report.bin" || m.File.Size != int64(len(data)) {
			t.Fatalf("sent %+v", m.File)
		}
		waitFor(t, 10*time.Minute, "alice's file message sent", func() bool {
			m := msgOf(t, alice.e, bob.id, m.ID)
			return m.State != client.StateQueued && m.File.State == client.FileDone
		})
		if stored := n.s.Shares.Stored(); float64(stored) > 1.6*float64(len(data)) {
			t.Errorf("the nodes hold %d bytes for a file of %d", stored, len(data))
		}
		waitFor(t, 10*time.Minute, "bob gets the message", func() bool {
			f := fileOf(t, bob, alice.id, m.ID)
			return f != nil && f.State == client.FileReady
		})
		if got := msgOf(t, bob.e, alice.id, m.ID); got.Text != "the report" || got.File.Name != "report.bin" || got.File.Type != "application/octet-stream" {
			t.Fatalf("bob sees %q %+v", got.Text, got.File)
		}
		if _, _, err := bob.e.OpenFile(m.ID); err == nil {
			t.Fatal("bob opened a file he has not fetched")
		}
		ids := n.s.Shares.ShareNodes()
		for _, id := range ids[:4] {
			n.s.Shares.SetDown(id, true)
		}
		if _, err := bob.e.Download(m.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Minute, "bob's download", func() bool { return fileOf(t, bob, alice.id, m.ID).State == client.FileDone })
		if got := readFile(t, bob, m.ID); !bytes.Equal(got, data) {
			t.Fatalf("bob's file: %d bytes, differs", len(got))
		}
		if got := readFile(t, alice, m.ID); !bytes.Equal(got, data) {
			t.Fatal("alice's own copy differs")
		}

		img := make([]byte, 150<<10)
		rand.Read(img)
		pic, err := alice.e.SendFile(ctx, bob.id, bytes.NewReader(img), client.FileMeta{Name: "cat.png", Thumb: []byte("tiny"), Width: 640, Height: 480}, "")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Minute, "the image shows at bob's without asking", func() bool {
			f := fileOf(t, bob, alice.id, pic.ID)
			return f != nil && f.State == client.FileDone && f.Type == "image/png" && string(f.Thumb) == "tiny" && f.Width == 640
		})
		if got := readFile(t, bob, pic.ID); !bytes.Equal(got, img) {
			t.Fatal("the image differs")
		}
	})
}

// TestFileDownloadResumes: a download that cannot finish (too many nodes
// down) is kept; after bob's engine restarts and the nodes are back, it
// finishes.
func TestFileDownloadResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob := n.newUser("alice"), n.newUser("bob")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		sendFirst(t, ctx, alice, bob, "hi")
		data := make([]byte, 2<<20)
		rand.Read(data)
		m, err := alice.e.SendFile(ctx, bob.id, bytes.NewReader(data), client.FileMeta{Name: "a.bin"}, "")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Minute, "bob gets the message", func() bool {
			f := fileOf(t, bob, alice.id, m.ID)
			return f != nil && f.State == client.FileReady
		})
		ids := n.s.Shares.ShareNodes()
		for _, id := range ids[:6] {
			n.s.Shares.SetDown(id, true)
		}
		if _, err := bob.e.Download(m.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Second) // a try or two fail
		if f := fileOf(t, bob, alice.id, m.ID); f.State != client.FileDownloading {
			t.Fatalf("with 6 of 12 down: %s", f.State)
		}
		bob.stop()
		for _, id := range ids[:6] {
			n.s.Shares.SetDown(id, false)
		}
		n.start(bob, client.Config{})
		waitFor(t, 10*time.Minute, "the download after a restart", func() bool { return fileOf(t, bob, alice.id, m.ID).State == client.FileDone })
		if got := readFile(t, bob, m.ID); !bytes.Equal(got, data) {
			t.Fatal("the file differs")
		}
	})
}

// TestFileToGroup: a file sent to a group reaches every member, each
// fetching it from the nodes.
func TestFileToGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet(t)
		alice, bob, carol := n.newUser("alice"), n.newUser("bob"), n.newUser("carol")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		befriend(t, alice, bob)
		befriend(t, alice, carol)
		g, err := alice.e.CreateGroup(ctx, "club", "", []string{bob.id, carol.id})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []*user{bob, carol} {
			waitFor(t, 5*time.Minute, "members join", func() bool {
				g := groupOf(t, u, g.ID)
				return g != nil && g.Status == client.GroupJoined
			})
		}
		sendGroupWhenReady(t, ctx, alice, g.ID, "hello")
		data := make([]byte, 500<<10)
		rand.Read(data)
		m, err := alice.e.SendFile(ctx, "group:"+g.ID, bytes.NewReader(data), client.FileMeta{Name: "song.ogg"}, "listen")
		if err != nil {
			t.Fatal(err)
		}
		if m.Group != g.ID {
			t.Fatalf("the file's message is in group %q", m.Group)
		}
		for _, u := range []*user{bob, carol} {
			waitFor(t, 10*time.Minute, "the voice note plays at each member's (fetched on arrival)", func() bool {
				f := fileOf(t, u, "group:"+g.ID, m.ID)
				return f != nil && f.State == client.FileDone && f.Type == "audio/ogg"
			})
			if got := readFile(t, u, m.ID); !bytes.Equal(got, data) {
				t.Fatal("the file differs")
			}
		}
	})
}
