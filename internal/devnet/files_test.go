package devnet_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/devnet"
)

// sendFileAPI posts data as a file to peer through p's API.
func (p *groupDaemon) sendFile(ctx context.Context, peer, name string, data []byte) (*client.Message, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("to", peer)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(data)
	mw.Close()
	var m client.Message
	p.mu.Lock()
	c := p.api
	p.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.DoRaw(cctx, http.MethodPost, "/api/v1/files", mw.FormDataContentType(), &body, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// message is message id as p holds it (nil if it holds none).
func (p *groupDaemon) message(ctx context.Context, id string) *client.Message {
	var m client.Message
	if err := p.call(ctx, http.MethodGet, "/api/v1/messages/"+id, nil, &m); err != nil {
		return nil
	}
	return &m
}

// TestFileThroughNodeKillsAndRestart: on 12 node processes, alice sends
// bob a 64 MiB file; 4 of the 12 nodes are killed with SIGKILL between the
// upload and the download; bob's daemon is killed with SIGKILL mid-download
// and restarted; the download goes on where it stopped and the file is
// the same, byte for byte. The nodes hold at most 1.6× the file.
func TestFileThroughNodeKillsAndRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	d := devnet.StartForTest(t, devnet.Config{Dir: t.TempDir(), Nodes: 12, Binary: umbraBin})
	alice, err := startGroupDaemon(t, ctx, d.BootstrapFile(), 0)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := startGroupDaemon(t, ctx, d.BootstrapFile(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]*groupDaemon{{alice, bob}, {bob, alice}} {
		if err := pair[0].call(ctx, http.MethodPost, "/api/v1/contacts", map[string]string{"id": pair[1].id}, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, ctx, time.Minute, "a first text", func() (bool, string) {
		err := alice.call(ctx, http.MethodPost, "/api/v1/messages", map[string]string{"to": bob.id, "text": "hi"}, nil)
		return err == nil, fmt.Sprint(err)
	})

	data := make([]byte, 64<<20)
	rand.Read(data)
	start := time.Now()
	m, err := alice.sendFile(ctx, bob.id, "big.bin", data)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, 4*time.Minute, "alice's file stored and its message sent", func() (bool, string) {
		got := alice.message(ctx, m.ID)
		if got == nil || got.File == nil {
			return false, "no message"
		}
		return got.File.State == client.FileDone && got.State != client.StateQueued,
			fmt.Sprintf("%s, %d of %d bytes, message %s", got.File.State, got.File.Done, got.File.Size, got.State)
	})
	t.Logf("64 MiB uploaded and sent in %s", time.Since(start).Round(time.Millisecond))
	var stored int64
	for i := range d.Procs {
		if st, err := d.Status(ctx, i+1); err == nil { // nodes count from 1
			stored += st.ShareBytes
		}
	}
	if float64(stored) > 1.6*float64(len(data)) || stored < int64(len(data)) {
		t.Errorf("the nodes hold %d bytes of shares for a file of %d", stored, len(data))
	}
	t.Logf("the nodes hold %.3f× the file", float64(stored)/float64(len(data)))

	killed := mrand.Perm(12)[:4]
	for k := range killed {
		killed[k]++ // nodes count from 1
	}
	for _, i := range killed {
		if err := d.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("killed nodes %v with SIGKILL", killed)
	waitUntil(t, ctx, 2*time.Minute, "bob gets the message", func() (bool, string) {
		got := bob.message(ctx, m.ID)
		return got != nil && got.File != nil && got.File.State == client.FileReady, "not yet"
	})
	start = time.Now()
	if err := bob.call(ctx, http.MethodPost, "/api/v1/messages/"+m.ID+"/download", nil, nil); err != nil {
		t.Fatal(err)
	}
	var at int64 // bytes downloaded when bob's daemon is killed: polled closely
	for deadline := time.Now().Add(2 * time.Minute); at == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("bob's download did not start")
		}
		if got := bob.message(ctx, m.ID); got != nil && got.File != nil {
			at = got.File.Done
		}
	}
	if at >= int64(len(data)) {
		t.Fatalf("the download ended before bob's daemon could be killed (%s)", time.Since(start))
	}
	bob.stop(os.Kill, 5*time.Second)
	t.Logf("killed bob's daemon with SIGKILL at %d of %d bytes", at, len(data))
	if err := bob.run(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, 4*time.Minute, "bob's download after the restart", func() (bool, string) {
		got := bob.message(ctx, m.ID)
		if got == nil || got.File == nil {
			return false, "no message"
		}
		return got.File.State == client.FileDone, fmt.Sprintf("%s, %d bytes", got.File.State, got.File.Done)
	})
	t.Logf("downloaded with 4 of 12 nodes down and a restart in %s", time.Since(start).Round(time.Millisecond))
	bob.mu.Lock()
	c := bob.api
	bob.mu.Unlock()
	body, _, err := c.Open(ctx, "/api/v1/messages/"+m.ID+"/file")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	h := sha256.New()
	n, err := io.Copy(h, body)
	if want := sha256.Sum256(data); err != nil || n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("bob's file: %d bytes, %v, differs", n, err)
	}
}
