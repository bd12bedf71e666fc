package store

// watcher is the shared wake-up channel of one mailbox. All Watch calls on a
// mailbox between two stores share it; refs counts the uncancelled ones.
type watcher struct {
	ch   chan struct{}
	refs int
}

// Watch returns a channel that is closed the next time a message is stored
// (committed) for mailbox, and a cancel func that releases it. Cancel is
// idempotent and must be called once the channel is no longer needed, fired
// or not; it never closes the channel itself.
func (s *Store) Watch(mailbox Hash) (<-chan struct{}, func()) {
	s.wmu.Lock()
	w := s.watchers[mailbox]
	if w == nil {
		w = &watcher{ch: make(chan struct{})}
		s.watchers[mailbox] = w
	}
	w.refs++
	s.wmu.Unlock()

	cancelled := false
	return w.ch, func() {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		if cancelled {
			return
		}
		cancelled = true
		w.refs--
		// After firing, w is no longer registered; nothing to release.
		if w.refs == 0 && s.watchers[mailbox] == w {
			delete(s.watchers, mailbox)
		}
	}
}

// fire wakes every watcher of mailbox.
func (s *Store) fire(mailbox Hash) {
	s.wmu.Lock()
	w := s.watchers[mailbox]
	if w != nil {
		delete(s.watchers, mailbox)
		close(w.ch)
	}
	s.wmu.Unlock()
}

// watcherCount is the number of mailboxes with registered watchers (tests).
func (s *Store) watcherCount() int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return len(s.watchers)
}
