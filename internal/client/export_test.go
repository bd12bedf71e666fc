package client

import (
	"errors"
	"sync/atomic"

	"github.com/umbra-im/umbra/internal/keystore"
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
