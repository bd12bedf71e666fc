package client

import "github.com/umbra-im/umbra/internal/ratchet"

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
