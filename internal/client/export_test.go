package client

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
