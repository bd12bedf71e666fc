package client

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// ErrEmptySearch is a search with no word to look for.
var ErrEmptySearch = errors.New("search for at least one word (letters or digits)")

// searchIdx is the engine's index, made on first use.
func (e *Engine) searchIdx() *searchIndex {
	e.searchOnce.Do(func() { e.search = newSearchIndex() })
	return e.search
}

// Search finds the messages holding every word of q, each word matching
// the start of a word of the message (any case), in the conversation with
// peer if set; newest first, at most limit (DefaultSearchLimit when 0,
// never more than MaxSearchLimit). The first search builds the index from
// the database.
func (e *Engine) Search(q, peer string, limit int) ([]SearchResult, error) {
	qs := queryWords(q)
	if len(qs) == 0 {
		return nil, ErrEmptySearch
	}
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	limit = min(limit, MaxSearchLimit)
	x := e.searchIdx()
	if err := e.buildSearch(x); err != nil {
		return nil, err
	}
	names := map[string]string{}
	if cs, err := e.d.contacts(); err == nil {
		for _, c := range cs {
			names[c.ID] = c.Name
		}
	}
	out := make([]SearchResult, 0, limit)
	for {
		x.mu.Lock()
		ns := x.match(qs, peer, limit)
		ids, keys := make([]string, len(ns)), make([]string, len(ns))
		for i, n := range ns {
			d := &x.docs[n]
			ids[i], keys[i] = d.id, msgKey(d.peer, time.UnixMilli(d.sentAt), d.id)
		}
		x.mu.Unlock()
		out = out[:0]
		gone := false
		for i, id := range ids {
			// The result as stored now: its state may have moved on, and a
			// message removed without an event the index saw is dropped.
			var m *Message
			if ok, err := e.d.getJSON(keys[i], &m); err != nil {
				return nil, err
			} else if !ok || m == nil || m.ID != id {
				m = nil
			}
			if m == nil {
				x.mu.Lock()
				x.removeLocked(id)
				x.mu.Unlock()
				gone = true
				continue
			}
			out = append(out, SearchResult{Message: *m, Peer: m.Peer(), Name: names[m.Peer()], Snippet: snippet(m.Text, qs)})
		}
		if !gone {
			return out, nil
		}
	}
}

// buildSearch fills the index from the database once. Messages saved
// while it reads are noted by the event hook and read again after.
func (e *Engine) buildSearch(x *searchIndex) error {
	x.buildMu.Lock()
	defer x.buildMu.Unlock()
	x.mu.Lock()
	if x.built {
		x.mu.Unlock()
		return nil
	}
	x.building = true
	x.mu.Unlock()
	fresh := newSearchIndex()
	fresh.unsorted = true
	err := e.scanMessages(func(m *Message) { fresh.addLocked(m) })
	slices.Sort(fresh.vocab)
	x.mu.Lock()
	defer x.mu.Unlock()
	pending := x.pending
	x.pending, x.building = nil, false
	if err != nil {
		return err
	}
	x.docs, x.byID, x.postings, x.vocab, x.dead = fresh.docs, fresh.byID, fresh.postings, fresh.vocab, 0
	x.built = true
	for _, id := range pending {
		e.reindexLocked(x, id)
	}
	return nil
}

// reindexLocked reads message id again: indexed anew if its text changed,
// dropped if it is gone.
func (e *Engine) reindexLocked(x *searchIndex, id string) {
	m, err := e.d.message(id)
	switch {
	case err != nil:
		e.log.Warn("search index", "err", err)
	case m == nil:
		x.removeLocked(id)
	default:
		x.addLocked(m)
	}
	x.compactLocked()
}

// searchHook keeps the index up to date from the engine's events: a
// message event (new, state, edit, deletion, whatever its type) has the
// message read again; a contact event with no message (a conversation
// deleted, say) has that conversation checked against the database.
func (e *Engine) searchHook(ev Event) {
	x := e.searchIdx()
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.built && !x.building {
		return // no search yet: the first one reads everything
	}
	switch {
	case ev.Message != nil && x.building:
		x.pending = append(x.pending, ev.Message.ID)
	case ev.Message != nil:
		e.reindexLocked(x, ev.Message.ID)
	case ev.Contact != nil && x.built:
		e.resyncPeerLocked(x, ev.Contact.ID)
	}
}

// resyncPeerLocked makes the index's docs of peer those of the database.
func (e *Engine) resyncPeerLocked(x *searchIndex, peer string) {
	keys, err := e.kv.List(unreadPrefix(peer))
	if err != nil {
		e.log.Warn("search index", "err", err)
		return
	}
	stored := make(map[string]bool, len(keys))
	for _, k := range keys {
		stored[k[strings.LastIndexByte(k, '/')+1:]] = true
	}
	for id, n := range x.byID {
		if x.docs[n].peer == peer && !stored[id] {
			x.removeLocked(id)
		}
	}
	for id := range stored {
		if _, ok := x.byID[id]; !ok {
			e.reindexLocked(x, id)
		}
	}
}

// scanner is a KV that reads many entries in one pass (ksKV).
type scanner interface {
	Scan(prefix string, fn func(key string, val []byte) error) error
}

// scanMessages calls fn with every stored message, in no particular
// order.
func (e *Engine) scanMessages(fn func(m *Message)) error {
	if sc, ok := e.kv.(scanner); ok {
		return sc.Scan("msg/", func(_ string, v []byte) error {
			var m Message
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			fn(&m)
			return nil
		})
	}
	keys, err := e.kv.List("msg/")
	if err != nil {
		return err
	}
	for _, k := range keys {
		var m Message
		if ok, err := e.d.getJSON(k, &m); err != nil {
			return err
		} else if ok {
			fn(&m)
		}
	}
	return nil
}
