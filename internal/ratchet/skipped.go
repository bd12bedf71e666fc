package ratchet

// Limits of the skipped-message-key store (Double Ratchet spec §3.5 and
// §6.5). MaxSkip bounds how far one message may advance a chain; the store
// holds at most MaxSkippedKeys keys and evicts the oldest beyond that.
const (
	MaxSkip        = 1000
	MaxSkippedKeys = 2000
)

type skipKey struct {
	dh [keySize]byte
	n  uint32
}

type skippedEntry struct {
	key skipKey
	mk  []byte
}

// skippedStore keeps message keys of skipped messages in insertion order.
// order may hold keys already taken out of keys; they are dropped lazily.
type skippedStore struct {
	keys  map[skipKey][]byte
	order []skipKey
}

func newSkippedStore() skippedStore {
	return skippedStore{keys: map[skipKey][]byte{}}
}

func mkSkipKey(dh []byte, n uint32) skipKey {
	var k skipKey
	copy(k.dh[:], dh)
	k.n = n
	return k
}

func (s *skippedStore) len() int { return len(s.keys) }

func (s *skippedStore) get(dh []byte, n uint32) ([]byte, bool) {
	mk, ok := s.keys[mkSkipKey(dh, n)]
	return mk, ok
}

// remove deletes and wipes a key (after its message decrypted).
func (s *skippedStore) remove(dh []byte, n uint32) {
	k := mkSkipKey(dh, n)
	if mk, ok := s.keys[k]; ok {
		clear(mk)
		delete(s.keys, k)
	}
	if len(s.order) > 2*MaxSkippedKeys {
		s.compact()
	}
}

// add stores entries in order, evicting (and wiping) the oldest keys
// beyond MaxSkippedKeys.
func (s *skippedStore) add(entries []skippedEntry) {
	for _, e := range entries {
		if old, ok := s.keys[e.key]; ok {
			clear(old)
		} else {
			s.order = append(s.order, e.key)
		}
		s.keys[e.key] = e.mk
	}
	for len(s.keys) > MaxSkippedKeys {
		k := s.order[0]
		s.order = s.order[1:]
		if mk, ok := s.keys[k]; ok {
			clear(mk)
			delete(s.keys, k)
		}
	}
	if len(s.order) > 2*MaxSkippedKeys {
		s.compact()
	}
}

func (s *skippedStore) compact() {
	out := make([]skipKey, 0, len(s.keys))
	for _, k := range s.order {
		if _, ok := s.keys[k]; ok {
			out = append(out, k)
		}
	}
	s.order = out
}

// entries lists the stored keys oldest first.
func (s *skippedStore) entries() []skippedEntry {
	out := make([]skippedEntry, 0, len(s.keys))
	seen := make(map[skipKey]bool, len(s.keys))
	for _, k := range s.order {
		if mk, ok := s.keys[k]; ok && !seen[k] {
			seen[k] = true
			out = append(out, skippedEntry{key: k, mk: mk})
		}
	}
	return out
}
