package client

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umbra-im/umbra/internal/keystore"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/ratchet"
)

// SessionCount is the number of sessions the engine holds with peer (for
// tests).
func (e *Engine) SessionCount(peer string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.recordLocked(peer); r != nil {
		return len(r.sessions)
	}
	return 0
}

// CurrentBundle is the bundle the engine would publish now (for tests).
func (e *Engine) CurrentBundle(t interface{ Fatal(...any) }) *ratchet.Bundle {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, err := e.prekeys.Bundle(e.acct)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failingKV fails every write while fail is set (for tests).
type failingKV struct {
	KV
	fail *atomic.Bool
}

var errInjected = errors.New("injected write failure")

func (f failingKV) Put(key string, val []byte) error {
	if f.fail.Load() {
		return errInjected
	}
	return f.KV.Put(key, val)
}

func (f failingKV) PutMany(entries []keystore.Entry) error {
	if f.fail.Load() {
		return errInjected
	}
	return f.KV.PutMany(entries)
}

// FailWritesWhen makes the engine's database writes fail while fail is
// set. Call it before Start.
func (e *Engine) FailWritesWhen(fail *atomic.Bool) {
	e.kv = failingKV{KV: e.kv, fail: fail}
	e.d = db{e.kv}
}

// ActiveSession is the ID (hex) of the session used to send to peer, ""
// if there is none (for tests).
func (e *Engine) ActiveSession(peer string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.recordLocked(peer); r != nil {
		return r.Active
	}
	return ""
}

// keepingKV remembers the outbox entries the engine removes (for tests).
type keepingKV struct {
	KV
	mu   *sync.Mutex
	kept map[string][]byte
}

func (k keepingKV) Delete(key string) error {
	if strings.HasPrefix(key, "outbox/") {
		if v, ok, err := k.KV.Get(key); err == nil && ok {
			k.mu.Lock()
			k.kept[key] = v
			k.mu.Unlock()
		}
	}
	return k.KV.Delete(key)
}

// KeepSentOutbox makes the engine remember the outbox entries it removes
// once they are sent. The returned replay writes them back and wakes the
// outbox, as if the engine had crashed between the store and the removal;
// it returns how many it wrote back. Call it before Start.
func (e *Engine) KeepSentOutbox() (replay func() int) {
	k := keepingKV{KV: e.kv, mu: &sync.Mutex{}, kept: map[string][]byte{}}
	e.kv = k
	e.d = db{e.kv}
	return func() int {
		k.mu.Lock()
		defer k.mu.Unlock()
		n := 0
		for key, v := range k.kept {
			if err := k.KV.Put(key, v); err == nil {
				n++
			}
		}
		select {
		case e.kick <- struct{}{}:
		default:
		}
		return n
	}
}

// OutboxLen is the number of entries in the outbox (for tests).
func (e *Engine) OutboxLen() int {
	keys, _ := e.kv.List("outbox/")
	return len(keys)
}

// InboxID is this client's inbox in the epoch of t, false if its
// generation has no root here (for tests).
func (e *Engine) InboxID(t time.Time) (mailbox.ID, bool) {
	k := e.inboxKey(e.epoch(t))
	if k == nil {
		return mailbox.ID{}, false
	}
	return k.ID(), true
}

// DerivableInboxes lists every inbox ID this home's state gives for the
// epochs of [from, to]: what someone who copied the home can compute (for
// tests).
func (e *Engine) DerivableInboxes(from, to time.Time) map[mailbox.ID]bool {
	out := map[mailbox.ID]bool{}
	for ep := e.epoch(from); ep <= e.epoch(to); ep++ {
		if k := e.inboxKey(ep); k != nil {
			out[k.ID()] = true
		}
	}
	return out
}

// PeerInbox is where this client writes to peer at t (for tests).
func (e *Engine) PeerInbox(peer string, t time.Time) (mailbox.ID, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, _, ok := e.peerInbox(peer, t)
	return id, ok
}

// SessionPeers lists the accounts the engine holds sessions with (for
// tests).
func (e *Engine) SessionPeers() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sessionPeersLocked()
}
