package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/umbra-im/umbra/internal/cover"
	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/files"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// Files (docs/files.md): a file is kept in this home's database (blob),
// then erasure-coded to the nodes (files.Upload) by the file worker, and
// only then does its message go, carrying the manifest. A received file
// is fetched by the same worker, at once for media up to AutoDownload,
// else when the user asks (Download). Jobs are durable: a restart goes
// on from the last finished stripe.

const (
	fileUpPrefix   = "fileup/"
	fileDownPrefix = "filedl/"
	fileManPrefix  = "filemf/"
)

// shareNetwork is a network whose nodes store file shares.
type shareNetwork interface {
	files.Net
	ShareNodes() [][]byte
}

// upJob is an upload in progress: the message waits for it.
type upJob struct {
	Peer     string        `json:"peer"` // account ID or "group:" and a group ID
	Meta     FileMeta      `json:"meta"`
	Size     int64         `json:"size"`
	Content  []byte        `json:"content"` // the message's content, without its file yet
	Upload   *files.Upload `json:"upload,omitempty"`
	Attempts int           `json:"attempts,omitempty"`
}

// downJob is a download in progress: the stripes already written.
type downJob struct {
	Done     []int `json:"done,omitempty"`
	Attempts int   `json:"attempts,omitempty"`
}

// maxAttempts is how many times a file job is tried before it fails.
const maxAttempts = 8

// ErrNoShareNodes is returned when the network stores no files.
var ErrNoShareNodes = errors.New("this network has no nodes that store files")

// SendFile sends a file to peer (an account ID, or "group:" and a group):
// it reads r (at most files.MaxFileSize bytes) into this home, then the
// file worker uploads it and sends the message with caption. It returns
// the message, queued, with its attachment "uploading".
func (e *Engine) SendFile(ctx context.Context, peer string, r io.Reader, meta FileMeta, caption string) (*Message, error) {
	if err := meta.clean(); err != nil {
		return nil, err
	}
	if len(caption) > MaxTextBytes {
		return nil, fmt.Errorf("caption is longer than %d KiB", MaxTextBytes>>10)
	}
	conv, err := e.conversation(peer)
	if err != nil {
		return nil, err
	}
	m := &Message{From: e.AccountID(), To: conv, Text: caption, State: StateQueued, Outgoing: true}
	if gid, ok := strings.CutPrefix(conv, groupPeerPrefix); ok {
		m.Group = gid
	} else if c, err := e.d.contact(conv); err != nil {
		return nil, err
	} else if c == nil {
		return nil, ErrUnknownContact
	} else if c.State == ContactBlocked {
		return nil, errors.New("you blocked this account: add it as a contact again to write to it")
	}
	c, err := envelope.NewContent(nil, envelope.KindText, []byte(caption), e.clock())
	if err != nil {
		return nil, err
	}
	m.ID, m.SentAt = idOf(c), time.UnixMilli(c.SentAt)
	// Keep the file first: a failure leaves no message behind (and the
	// sweep leaves the pieces alone until the message is saved).
	e.fsending.Store(m.ID, true)
	defer e.fsending.Delete(m.ID)
	b := &blob{kv: e.kv, id: m.ID, size: files.MaxFileSize + 1}
	size, err := copyToBlob(ctx, b, r)
	if err != nil {
		b.remove()
		return nil, err
	}
	if e.timerOf(conv) > 0 {
		e.stampTimer(c, m)
	}
	raw, err := c.Encode()
	if err != nil {
		b.remove()
		return nil, err
	}
	m.File = meta.attachment(size, FileUploading)
	var bt batch
	if err := saveMessageTo(&bt, m); err != nil {
		return nil, err
	}
	if err := putJSON(&bt, fileUpPrefix+m.ID, upJob{Peer: conv, Meta: meta, Size: size, Content: raw}); err != nil {
		return nil, err
	}
	if err := e.kv.PutMany(bt.entries); err != nil {
		b.remove()
		return nil, err
	}
	e.bus.publish(Event{Type: EventMessage, Message: m}) // wakes the file worker
	return m, nil
}

// copyToBlob reads r into b in pieces, up to files.MaxFileSize bytes.
func copyToBlob(ctx context.Context, b *blob, r io.Reader) (int64, error) {
	buf := make([]byte, blobChunk)
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if size+int64(n) > files.MaxFileSize {
				return 0, files.ErrTooLarge
			}
			if err := b.kv.Put(b.key(size/blobChunk), append([]byte(nil), buf[:n]...)); err != nil {
				return 0, err
			}
			size += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return size, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read the file: %w", err)
		}
	}
}

// Download asks the file worker to fetch the file of message id (a file
// already here or on its way is left as it is).
func (e *Engine) Download(id string) (*Message, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.d.message(id)
	if err != nil {
		return nil, err
	}
	if m == nil || m.File == nil {
		return nil, errors.New("no file in this message")
	}
	switch m.File.State {
	case FileReady, FileFailed:
		if m.Outgoing {
			return m, nil
		}
	default:
		return m, nil
	}
	m.File.State, m.File.Error = FileDownloading, ""
	var b batch
	if err := saveMessageTo(&b, m); err != nil {
		return nil, err
	}
	if err := putJSON(&b, fileDownPrefix+id, downJob{}); err != nil {
		return nil, err
	}
	if err := e.kv.PutMany(b.entries); err != nil {
		return nil, err
	}
	e.bus.publish(Event{Type: EventMessage, Message: m}) // wakes the file worker
	return m, nil
}

// Message returns message id: in the conversation with peer, where id
// may be a prefix (FindMessage); with no peer, id is the whole ID.
func (e *Engine) Message(peer, id string) (*Message, error) {
	if peer != "" {
		return e.FindMessage(peer, id)
	}
	m, err := e.d.message(strings.ToLower(id))
	if err == nil && m == nil {
		err = ErrNoMessage
	}
	return m, err
}

// OpenFile returns the file of message id, whole on this device.
func (e *Engine) OpenFile(id string) (*io.SectionReader, *Attachment, error) {
	m, err := e.d.message(id)
	if err != nil {
		return nil, nil, err
	}
	if m == nil || m.File == nil {
		return nil, nil, errors.New("no file in this message")
	}
	if m.File.State != FileDone && !(m.Outgoing && m.File.State != FileFailed) {
		return nil, m.File, fmt.Errorf("the file is %s, not on this device yet", m.File.State)
	}
	return io.NewSectionReader(openBlob(e.kv, id, m.File.Size), 0, m.File.Size), m.File, nil
}

// receiveFileLocked gives an incoming text its attachment, if it carries
// one, writing the manifest (and a download job, for media up to
// AutoDownload) to b. A file that does not parse is shown as failed.
func (e *Engine) receiveFileLocked(b *batch, c *envelope.Content, m *Message) error {
	if len(c.File) == 0 {
		return nil
	}
	man, meta, err := parseFileBody(c.File)
	if err != nil {
		e.log.Warn("a file that does not parse", "msg", m.ID, "err", err)
		m.File = &Attachment{Name: "file", State: FileFailed, Error: "the file's description does not parse"}
		return nil
	}
	m.File = meta.attachment(man.Size, FileReady)
	raw, _ := man.Marshal()
	if err := b.Put(fileManPrefix+m.ID, raw); err != nil {
		return err
	}
	if media(meta.Type) && man.Size <= AutoDownload {
		m.File.State = FileDownloading
		if err := putJSON(b, fileDownPrefix+m.ID, downJob{}); err != nil {
			return err
		}
	}
	return nil
}

// forgetFile removes what this device keeps of message id's file.
func (e *Engine) forgetFile(id string) {
	for _, k := range []string{fileUpPrefix + id, fileDownPrefix + id, fileManPrefix + id} {
		e.kv.Delete(k)
	}
	(&blob{kv: e.kv, id: id}).remove()
}

// sweepFiles removes the pieces and jobs of files whose message is gone
// or no longer has a file (deleted, expired).
func (e *Engine) sweepFiles() {
	seen := map[string]bool{}
	for _, pre := range []string{"fblob/", fileUpPrefix, fileDownPrefix, fileManPrefix} {
		keys, err := e.kv.List(pre)
		if err != nil {
			return
		}
		for _, k := range keys {
			id, _, _ := strings.Cut(strings.TrimPrefix(k, pre), "/")
			if _, busy := e.fsending.Load(id); seen[id] || busy {
				continue
			}
			seen[id] = true
			e.mu.Lock()
			m, err := e.d.message(id)
			if err == nil && (m == nil || m.File == nil) {
				e.forgetFile(id)
			}
			e.mu.Unlock()
		}
	}
}

// kickFiles wakes both file runners.
func (e *Engine) kickFiles() {
	for _, k := range e.fkick {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

// fileLoop runs the file jobs: uploads and downloads, one of each at a
// time, until ctx ends. A job that fails is tried again later (after 5 s,
// doubling to 2 min), maxAttempts times in all.
func (e *Engine) fileLoop(ctx context.Context) {
	sn, ok := e.net.(shareNetwork)
	if !ok {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	run := func(prefix string, kick chan struct{}, job func(context.Context, shareNetwork, string) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			retry := time.Duration(0) // after a failure: 5 s, doubling to 2 min
			for {
				keys, _ := e.kv.List(prefix)
				failed := false
				for _, k := range keys {
					if ctx.Err() != nil {
						return
					}
					if err := job(ctx, sn, strings.TrimPrefix(k, prefix)); err != nil && ctx.Err() == nil {
						e.log.Warn("file transfer", "job", k, "err", err)
						failed = true
					}
				}
				wait := time.Hour
				if failed {
					retry = min(max(2*retry, 5*time.Second), 2*time.Minute)
					wait = retry
				} else {
					retry = 0
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-kick:
				case <-t.C:
				}
				t.Stop()
			}
		}()
	}
	run(fileUpPrefix, e.fkick[0], e.runUpload)
	run(fileDownPrefix, e.fkick[1], e.runDownload)
	// A job is written in the same transaction as its message, and the
	// message's event comes after the commit: wake the runners then (a
	// kick before the commit could find no job yet).
	events, stop := e.Subscribe()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-events:
				if m := ev.Message; m != nil && m.File != nil && (m.File.State == FileUploading || m.File.State == FileDownloading) {
					e.kickFiles()
				}
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			e.sweepFiles()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// engineNet sends share requests in the engine's schedule (strict mode:
// in place of cover requests).
type engineNet struct {
	e  *Engine
	sn shareNetwork
}

func (n engineNet) PutShare(ctx context.Context, node []byte, req *wire.SharePutReq) (resp *wire.SharePutResp, err error) {
	err = n.e.do(ctx, cover.Send, func(ctx context.Context) error {
		resp, err = n.sn.PutShare(ctx, node, req)
		return err
	})
	return resp, err
}

func (n engineNet) GetShare(ctx context.Context, node []byte, a files.Address) (data []byte, err error) {
	err = n.e.do(ctx, cover.Fetch, func(ctx context.Context) error {
		data, err = n.sn.GetShare(ctx, node, a)
		return err
	})
	return data, err
}

func (n engineNet) VerifyReceipt(node []byte, a files.Address, expiry int64, sig []byte) bool {
	return n.sn.VerifyReceipt(node, a, expiry, sig)
}

// progress saves and publishes a file's progress, at most every 250 ms.
func (e *Engine) progress(id string) func(done, total int64) {
	var last time.Time
	return func(done, total int64) {
		if time.Since(last) < 250*time.Millisecond && done < total {
			return
		}
		last = time.Now()
		e.updateFile(id, func(a *Attachment) { a.Done = done })
	}
}

// updateFile changes message id's attachment, saves and publishes it.
func (e *Engine) updateFile(id string, f func(*Attachment)) *Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, err := e.d.message(id)
	if err != nil || m == nil || m.File == nil {
		return nil
	}
	f(m.File)
	if err := e.d.saveMessage(m); err != nil {
		e.log.Error("save message", "err", err)
	}
	e.bus.publish(Event{Type: EventMessage, Message: m})
	return m
}

// runUpload uploads message id's file, then sends the message.
func (e *Engine) runUpload(ctx context.Context, sn shareNetwork, id string) error {
	var job upJob
	if ok, err := e.d.getJSON(fileUpPrefix+id, &job); err != nil || !ok {
		return err
	}
	save := func() error { return putJSON(e.kv, fileUpPrefix+id, job) }
	if m, err := e.d.message(id); err != nil {
		return err
	} else if m == nil || m.File == nil || m.File.State != FileUploading {
		return e.kv.Delete(fileUpPrefix + id) // sent already, or deleted
	}
	if job.Upload == nil {
		nodes := sn.ShareNodes()
		if len(nodes) == 0 {
			return ErrNoShareNodes
		}
		expiry := e.now().Add(e.cfg.MessageTTL)
		u, err := files.NewUpload(job.Size, nodes, expiry.UnixMilli())
		if err != nil {
			return e.failUpload(id, err)
		}
		job.Upload = u
		if err := save(); err != nil {
			return err
		}
	}
	src := openBlob(e.kv, id, job.Size)
	start := time.Now()
	t := &files.Transfer{Net: engineNet{e, sn}, Progress: e.progress(id), Checkpoint: func(int) error { return save() }}
	if err := job.Upload.Run(ctx, src, t); err != nil {
		if ctx.Err() != nil {
			return err
		}
		if job.Attempts++; job.Attempts >= maxAttempts {
			return e.failUpload(id, err)
		}
		save()
		return err
	}
	man, err := job.Upload.Manifest()
	if err != nil {
		return e.failUpload(id, err)
	}
	raw, err := man.Marshal()
	if err != nil {
		return e.failUpload(id, err)
	}
	body, err := encodeFileBody(raw, job.Meta)
	if err != nil {
		return e.failUpload(id, err)
	}
	c, err := envelope.ParseContent(job.Content)
	if err != nil {
		return e.failUpload(id, err)
	}
	c.File = body
	e.log.Info("file uploaded", "msg", id, "size", job.Size, "took", time.Since(start).Round(time.Millisecond))
	if err := e.sendFileMessage(ctx, job.Peer, id, c, raw); err != nil {
		if job.Attempts++; job.Attempts >= maxAttempts {
			return e.failUpload(id, err)
		}
		save()
		return err
	}
	return nil
}

// sendFileMessage queues the message of an uploaded file, writing its
// manifest and removing the upload job in the same transaction.
func (e *Engine) sendFileMessage(ctx context.Context, peer, id string, c *envelope.Content, manifest []byte) error {
	m, err := e.d.message(id)
	if err != nil || m == nil {
		return fmt.Errorf("the message of file %s is gone", id)
	}
	m.File.State, m.File.Done = FileDone, m.File.Size
	// The message, now "done", goes out with its manifest in one
	// transaction; the job is removed after (runUpload skips a job whose
	// message is done: one a crash left behind).
	then := func(b *batch) error { return b.Put(fileManPrefix+id, manifest) }
	if gid, ok := strings.CutPrefix(peer, groupPeerPrefix); ok {
		err = e.sendGroupContent(gid, c, m, then)
	} else {
		aid, perr := identity.ParseAccountID(peer)
		if perr != nil {
			return perr
		}
		err = e.enqueueWith(ctx, aid, c, m, enqueueOpts{then: then})
	}
	if err != nil {
		return err
	}
	e.kv.Delete(fileUpPrefix + id)
	e.bus.publish(Event{Type: EventMessage, Message: m})
	return nil
}

// failUpload marks an upload failed for good.
func (e *Engine) failUpload(id string, cause error) error {
	e.kv.Delete(fileUpPrefix + id)
	e.mu.Lock()
	m, _ := e.d.message(id)
	if m != nil && m.File != nil {
		m.File.State, m.File.Error = FileFailed, cause.Error()
		m.State, m.Error = StateFailed, "the file could not be stored: "+cause.Error()
		e.d.saveMessage(m)
	}
	e.mu.Unlock()
	if m != nil {
		e.bus.publish(Event{Type: EventMessage, Message: m})
	}
	return cause
}

// runDownload fetches message id's file into this home.
func (e *Engine) runDownload(ctx context.Context, sn shareNetwork, id string) error {
	var job downJob
	if ok, err := e.d.getJSON(fileDownPrefix+id, &job); err != nil || !ok {
		return err
	}
	raw, ok, err := e.kv.Get(fileManPrefix + id)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		e.kv.Delete(fileDownPrefix + id)
		e.updateFile(id, func(a *Attachment) { a.State, a.Error = FileFailed, err.Error() })
		return err
	}
	if !ok {
		return fail(errors.New("the file's manifest is gone"))
	}
	man, err := files.ParseManifest(raw)
	if err != nil {
		return fail(err)
	}
	done := map[int]bool{}
	for _, i := range job.Done {
		done[i] = true
	}
	dst := openBlob(e.kv, id, man.Size)
	if len(job.Done) == 0 {
		// A piece per stripe: each stripe is one write (up to 4 MiB
		// pieces; past that, stripes are many pieces anyway).
		if d := int64(man.Params.StripeData()); d <= 4<<20 {
			if err := dst.setPiece(d); err != nil {
				return err
			}
		}
	}
	t := &files.Transfer{Net: engineNet{e, sn}, Progress: e.progress(id), Checkpoint: func(i int) error {
		job.Done = append(job.Done, i)
		return putJSON(e.kv, fileDownPrefix+id, job)
	}}
	start := time.Now()
	e.log.Debug("file download", "msg", id, "size", man.Size, "stripes_done", len(done))
	if err := files.Download(ctx, man, dst, func(i int) bool { return done[i] }, t); err != nil {
		if ctx.Err() != nil {
			return err
		}
		if job.Attempts++; job.Attempts >= maxAttempts {
			return fail(err)
		}
		putJSON(e.kv, fileDownPrefix+id, job)
		return err
	}
	e.kv.Delete(fileDownPrefix + id)
	e.updateFile(id, func(a *Attachment) { a.State, a.Done, a.Error = FileDone, a.Size, "" })
	e.log.Info("file downloaded", "msg", id, "size", man.Size, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
