package ui_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // the thumbnail
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/umbra-im/umbra/internal/client"
)

// TestBrowserFiles sends files through the web UI over a real devnet:
// alice attaches a picture (the file input, as the attach button's picker
// fills it) and a 100 MB binary file to bob. The page makes the picture's
// thumbnail (bob's daemon has it, at most 32 KiB, with the picture's size);
// bob's tab shows the picture inline (read from the daemon's file URL into
// a blob: URL) and the binary file as a card; bob clicks Download, and the
// bytes his page then reads back are the ones alice sent. A file over
// 100 MB is refused in the page with a clear message. Alice records a
// 2-second voice note (Chromium's fake microphone); bob's tab gets an
// <audio> player whose source loads.
func TestBrowserFiles(t *testing.T) {
	chromiumPath(t)
	start := time.Now()
	bin := buildUmbra(t)
	net := startNetwork(t, bin, 6)
	alice := startDaemon(t, bin, "alice", net.BootstrapFile())
	bob := startDaemon(t, bin, "bob", net.BootstrapFile())
	ids := newAccounts(t, alice, bob)
	aliceID, bobID := ids[0], ids[1]
	alice.do(t, http.MethodPost, "/api/v1/contacts", map[string]string{"id": bobID, "name": "Bob"}, nil)
	bob.do(t, http.MethodPost, "/api/v1/contacts", map[string]string{"id": aliceID, "name": "Alice"}, nil)
	t.Logf("network and accounts in %.1fs", time.Since(start).Seconds())

	// The files alice sends.
	dir := t.TempDir()
	picPath := filepath.Join(dir, "photo.png")
	writePicture(t, picPath, 640, 480)
	blob := make([]byte, 100<<20) // the largest file
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	blobPath := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(blobPath, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	blobSum := sha256.Sum256(blob)
	hugePath := filepath.Join(dir, "huge.bin") // sparse: costs no disk
	if f, err := os.Create(hugePath); err != nil {
		t.Fatal(err)
	} else if err := f.Truncate(100<<20 + 1); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}

	b := newBrowser(t, chromedp.Flag("use-fake-ui-for-media-stream", true), chromedp.Flag("use-fake-device-for-media-stream", true))
	at := b.openTab("alice", true, 1280, 800, 1)
	bt := b.openTab("bob", false, 1024, 760, 1)
	// The lists re-render as events come: find and click in one evaluation.
	at.do("open alice's app", 30*time.Second, chromedp.Navigate(alice.uiURL()))
	at.waitJS("alice's chat with bob", 30*time.Second, `document.querySelector('#attach-btn') || (`+clickExpr(`#conv-list button[data-peer="`+bobID+`"]`)+`, false)`)
	bt.do("open bob's app", 30*time.Second, chromedp.Navigate(bob.uiURL()))
	bt.waitJS("bob's chat with alice", 30*time.Second, `document.querySelector('#attach-btn') || (`+clickExpr(`#conv-list button[data-peer="`+aliceID+`"]`)+`, false)`)

	// Too large: refused in the page, nothing sent.
	at.do("pick a file over 100 MB", 10*time.Second, chromedp.SetUploadFiles(css("#file-input"), []string{hugePath}))
	at.waitJS("the size error", 10*time.Second, `document.querySelector('#file-status:not([hidden]) .file-error')?.textContent.includes('at most 100 MB')`)
	at.shot("files-01-too-large")

	// The picture, with a caption typed first.
	at.do("attach the picture", 10*time.Second, chromedp.SendKeys(css("#composer"), "The view"),
		chromedp.SetUploadFiles(css("#file-input"), []string{picPath}))
	outPic := `document.querySelector('.msg.out .file[data-kind="image"]')`
	at.waitJS("the picture in alice's chat", 30*time.Second, outPic+`?.closest('.msg').querySelector('.text')?.textContent === 'The view' &&
		`+outPic+`.querySelector('img.file-img')?.naturalWidth === 640`)
	picID := eval[string](at, "the picture's message", outPic+`.closest('.msg').dataset.id`)

	// The 100 MB file.
	at.do("attach the binary file", 10*time.Second, chromedp.SetUploadFiles(css("#file-input"), []string{blobPath}))
	outBin := `[...document.querySelectorAll('.msg.out .file[data-kind="file"]')].find(f => f.querySelector('.file-name')?.textContent === 'data.bin')`
	at.waitJS("the file card in alice's chat", 60*time.Second, outBin)
	binID := eval[string](at, "the file's message", outBin+`.closest('.msg').dataset.id`)
	at.shot("files-02-alice-sending")

	// Bob: the picture inline (the daemon fetched it on arrival), from the
	// file's URL, and the thumbnail alice's page made.
	inPic := `document.querySelector('.msg.in[data-id="` + picID + `"] img.file-img')`
	bt.waitJS("the picture at bob", 240*time.Second, inPic+` && `+inPic+`.naturalWidth === 640 && `+
		inPic+`.dataset.src === '/api/v1/messages/`+picID+`/file' && `+inPic+`.src.startsWith('blob:')`)
	var pic client.Message
	bob.do(t, http.MethodGet, "/api/v1/messages/"+picID, nil, &pic)
	if pic.File == nil || pic.File.Name != "photo.png" || pic.File.Type != "image/png" || pic.File.Width != 640 || pic.File.Height != 480 ||
		len(pic.File.Thumb) == 0 || len(pic.File.Thumb) > client.MaxThumb || pic.Text != "The view" {
		t.Fatalf("bob's picture message: %+v", pic.File)
	}
	thumb, _, err := image.Decode(bytes.NewReader(pic.File.Thumb))
	if err != nil {
		t.Fatalf("the thumbnail is no picture: %v", err)
	}
	if tb := thumb.Bounds(); tb.Dx() != 320 || tb.Dy() != 240 {
		t.Errorf("thumbnail of %v, want 320×240", tb)
	}

	// Bob: the file as a card; Download, then its bytes are alice's.
	inBin := `document.querySelector('.msg.in[data-id="` + binID + `"] .file[data-kind="file"]')`
	bt.waitJS("the file card at bob", 240*time.Second, inBin+`?.querySelector('.file-download') && `+
		inBin+`.querySelector('.file-sub').textContent.startsWith('100 MB')`)
	// No caption, no text: the bubble shows the card and the time only.
	if txt := eval[string](bt, "the card's bubble", inBin+`.closest('.bubble').innerText`); strings.Contains(txt, "null") ||
		eval[bool](bt, "the card's caption", inBin+`.closest('.bubble').querySelector('.text') !== null`) {
		t.Errorf("bob's file message shows text besides its card: %q", txt)
	}
	bt.waitJS("the file named in the chat list", 10*time.Second, `document.querySelector('#conv-list button[data-peer="`+aliceID+`"] .conv-last')?.textContent === 'File: data.bin'`)
	bt.shot("files-03-bob-picture-and-card")
	// One evaluation finds and clicks: a re-render between two steps cannot
	// leave a stale node.
	bt.waitJS("click Download", 10*time.Second, clickExpr(`.msg.in[data-id="`+binID+`"] .file-download`))
	bt.waitJS("the download done", 240*time.Second, inBin+`?.querySelector('.file-save[data-src="/api/v1/messages/`+binID+`/file?download=1"]')`)
	eval[bool](bt, "read the file back", `(window.__got = null, fetch('/api/v1/messages/`+binID+`/file?download=1',
		{ headers: { Authorization: 'Bearer ' + sessionStorage.getItem('umbra-token') } }).then(r => r.ok ? r.arrayBuffer() : Promise.reject(r.status))
		.then(b => crypto.subtle.digest('SHA-256', b).then(d => { window.__got = b.byteLength + ':' + [...new Uint8Array(d)].map(x => x.toString(16).padStart(2, '0')).join(''); }))
		.catch(e => { window.__got = 'error ' + e; }), true)`)
	bt.waitJS("the file's bytes", 30*time.Second, `window.__got`)
	want := strconv.Itoa(len(blob)) + ":" + hex.EncodeToString(blobSum[:])
	if got := eval[string](bt, "the file's bytes", `window.__got`); got != want {
		t.Fatalf("bob's page read %q, want %q", got, want)
	}

	// A voice note of about 2 s.
	at.do("record", 10*time.Second, chromedp.Click(css("#mic-btn")), chromedp.WaitVisible(css("#rec-time")))
	at.waitJS("2 s recorded", 10*time.Second, `document.querySelector('#rec-time')?.textContent === '0:02'`)
	at.shot("files-04-recording")
	at.do("send the voice note", 10*time.Second, chromedp.Click(css("#rec-send")))
	at.waitJS("the voice note in alice's chat", 30*time.Second, `document.querySelector('.msg.out .file-voice audio')`)
	voiceID := eval[string](at, "the voice note's message", `document.querySelector('.msg.out .file-voice').closest('.msg').dataset.id`)
	inVoice := `document.querySelector('.msg.in[data-id="` + voiceID + `"] .file-voice audio')`
	bt.waitJS("the voice note at bob", 240*time.Second, inVoice+` && (`+inVoice+`.readyState >= 1 || `+inVoice+`.duration > 0)`)
	var voice client.Message
	bob.do(t, http.MethodGet, "/api/v1/messages/"+voiceID, nil, &voice)
	if f := voice.File; f == nil || !strings.HasPrefix(f.Name, "voice-") || !strings.HasPrefix(f.Type, "audio/") || f.Duration < 1500 || f.Duration > 10000 || f.Size == 0 {
		t.Fatalf("bob's voice note: %+v", voice.File)
	}
	bt.shot("files-05-bob-voice")

	// A refused microphone (as a browser refuses it) says so on the page.
	eval[bool](at, "refuse the microphone", `(navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError')), true)`)
	at.do("record again", 10*time.Second, chromedp.Click(css("#mic-btn")))
	at.waitJS("the microphone message", 10*time.Second, `document.querySelector('#file-status:not([hidden]) .file-error')?.textContent.includes('may not use the microphone') &&
		!document.querySelector('#mic-btn.recording')`)
	at.shot("files-06-microphone-refused")

	// A picture pasted into the composer.
	eval[bool](at, "paste a picture", `(() => { const c = document.createElement('canvas'); c.width = 200; c.height = 100;
		const x = c.getContext('2d'); x.fillStyle = '#3a7'; x.fillRect(0, 0, 200, 100);
		c.toBlob((b) => { const dt = new DataTransfer(); dt.items.add(new File([b], 'pasted.png', { type: 'image/png' }));
			document.querySelector('#composer').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true })); }, 'image/png');
		return true; })()`)
	pasted := `[...document.querySelectorAll('.msg.%s img.file-img')].some(i => i.alt === 'pasted.png' && i.naturalWidth === 200)`
	at.waitJS("the pasted picture at alice", 30*time.Second, fmt.Sprintf(pasted, "out"))
	bt.waitJS("the pasted picture at bob", 240*time.Second, fmt.Sprintf(pasted, "in"))

	// A group: alice drops a file onto the conversation.
	var g client.Group
	alice.do(t, http.MethodPost, "/api/v1/groups", map[string]any{"name": "Files", "members": []string{bobID}}, &g)
	groupBtn := `#group-list button[data-group="` + g.ID + `"]`
	at.waitJS("open the group at alice", 30*time.Second, `document.querySelector('.chat[data-group] #attach-btn') || (`+clickExpr(groupBtn)+`, false)`)
	bt.waitJS("open the group at bob", 90*time.Second, `document.querySelector('`+groupBtn+`[data-status="member"]') && (`+clickExpr(groupBtn)+`, true) &&
		document.querySelector('.chat[data-group] #attach-btn')`)
	eval[bool](at, "drop a file", `(() => { const dt = new DataTransfer(); dt.items.add(new File(['notes for the group'], 'notes.txt', { type: 'text/plain' }));
		const s = document.querySelector('.chat[data-group]');
		for (const type of ['dragenter', 'dragover', 'drop']) s.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
		return true; })()`)
	dropped := `[...document.querySelectorAll('.msg.in .file[data-kind="file"]')].find(f => f.querySelector('.file-name').textContent === 'notes.txt')`
	bt.waitJS("the dropped file at bob", 240*time.Second, dropped+`?.closest('.msg').querySelector('.msg-sender')?.textContent === 'Alice' &&
		`+dropped+`.querySelector('.file-sub').textContent === '19 B · text/plain'`)
	bt.waitJS("the file in bob's group list", 10*time.Second, `document.querySelector('`+groupBtn+`').textContent.includes('Alice: File: notes.txt')`)
	// The sender's name and the card stack in the bubble: the card is inside it.
	if !eval[bool](bt, "the group file's bubble", `(() => { const f = `+dropped+`; const a = f.getBoundingClientRect(), b = f.closest('.bubble').getBoundingClientRect();
		return a.top >= b.top && a.bottom <= b.bottom && a.height > 20; })()`) {
		t.Error("the file card overflows its bubble in the group")
	}
	bt.shot("files-07-group-file")

	// At phone width the composer keeps its four controls on one row.
	bt.do("phone width", 10*time.Second, chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2)))
	bt.waitJS("bob's 1:1 chat at phone width", 30*time.Second, `document.querySelector('.chat:not([data-group]) #attach-btn') || (`+
		clickExpr(`#conv-list button[data-peer="`+aliceID+`"]`)+`, false)`)
	if !eval[bool](bt, "the composer's row", `(() => { const r = (s) => document.querySelector(s).getBoundingClientRect();
		const a = r('#attach-btn'), c = r('#composer'), m = r('#mic-btn'), s = r('.send-btn');
		return a.right <= c.left && c.right <= m.left && m.right <= s.left && s.right <= 360 && c.width >= 120 && Math.abs(a.bottom - s.bottom) < 2; })()`) {
		t.Error("the composer's controls do not fit one row at 360 px")
	}
	bt.shot("files-08-phone")
	b.checkFaults()
	t.Logf("done in %.1fs", time.Since(start).Seconds())
}

// writePicture writes a w×h PNG of colour bands.
func writePicture(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// clickExpr is a JavaScript expression that clicks the element sel finds,
// true if there was one.
func clickExpr(sel string) string {
	return `((b) => { if (!b) return false; b.click(); return true; })(document.querySelector(` + jsString(sel) + `))`
}
