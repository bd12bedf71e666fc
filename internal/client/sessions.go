package client

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/umbra-im/umbra/internal/ratchet"
)

// A peer's session record: every ratchet session the engine holds with
// one account, one of them active (used to send). Several exist when both
// sides start a session at once (each sent before it saw the other's first
// message) or when the peer starts afresh (a reinstall): the others stay
// for receiving, so a message encrypted on any of them still opens.
//
// Which session is active must converge on both sides without a round
// trip. A session that arrives while the active one is young (created
// within crossingWindow) is a crossing: both sides keep the one with the
// larger session ID, which both compute alike. Later, the newest session
// wins, as a peer that started afresh has lost the old one.
//
// KV layout: "session/<peer>/<id hex>" holds each session, and
// "sessmeta/<peer>" the record's metadata.

const (
	crossingWindow = 10 * time.Minute
	// maxSessionsPerPeer bounds a record; the oldest inactive session is
	// dropped beyond it.
	maxSessionsPerPeer = 4
)

type sessionRecord struct {
	Active  string               `json:"active"`  // session ID, hex
	Created map[string]time.Time `json:"created"` // session ID (hex) → when this engine got it
	// ReceiveOnly lists sessions restored from a backup (vault.go): they
	// open what the peer still sends on them but never encrypt, since a
	// backup's ratchet state may be older than what was sent since.
	ReceiveOnly []string `json:"receive_only,omitempty"`

	sessions map[string]*ratchet.Session // loaded sessions, by ID hex
}

func sessionsPrefix(peer string) string { return "session/" + peer + "/" }
func sessionKeyOf(peer string, id ratchet.SessionID) string {
	return sessionsPrefix(peer) + hex.EncodeToString(id[:])
}
func sessionMetaKey(peer string) string { return "sessmeta/" + peer }

// recordLocked returns the session record with peer, loading it on first
// use; nil if there is none.
func (e *Engine) recordLocked(peer string) *sessionRecord {
	if r, ok := e.sessions[peer]; ok {
		return r
	}
	var r sessionRecord
	if ok, err := e.d.getJSON(sessionMetaKey(peer), &r); err != nil || !ok {
		return nil
	}
	r.sessions = map[string]*ratchet.Session{}
	keys, _ := e.kv.List(sessionsPrefix(peer))
	for _, k := range keys {
		b, ok, err := e.kv.Get(k)
		if err != nil || !ok {
			continue
		}
		s, err := ratchet.UnmarshalSession(b)
		if err != nil {
			e.log.Error("session state unreadable", "peer", short(peer), "err", err)
			continue
		}
		r.sessions[k[len(sessionsPrefix(peer)):]] = s
	}
	if r.sessions[r.Active] == nil || slices.Contains(r.ReceiveOnly, r.Active) {
		// The active session is unreadable or gone: fall back to the
		// newest one rather than hiding every session with this peer.
		r.Active = ""
		for k := range r.sessions {
			if slices.Contains(r.ReceiveOnly, k) {
				continue
			}
			if r.Active == "" || r.Created[k].After(r.Created[r.Active]) {
				r.Active = k
			}
		}
		// Only receive-only sessions: the record still opens what arrives
		// on them, and the next send starts a new session.
		if len(r.sessions) == 0 {
			return nil
		}
	}
	if r.Created == nil {
		r.Created = map[string]time.Time{}
	}
	e.sessions[peer] = &r
	return &r
}

// sessionLocked returns the active session with peer.
func (e *Engine) sessionLocked(peer string) (*ratchet.Session, bool) {
	r := e.recordLocked(peer)
	if r == nil || r.sessions[r.Active] == nil {
		return nil, false
	}
	return r.sessions[r.Active], true
}

// sessionPeers lists the accounts the engine holds sessions with.
func (e *Engine) sessionPeersLocked() []string {
	keys, _ := e.kv.List("sessmeta/")
	peers := make([]string, 0, len(keys))
	for _, k := range keys {
		peers = append(peers, k[len("sessmeta/"):])
	}
	return peers
}

// peerSessionLocked is peer's session with the given ID, nil if none.
func (e *Engine) peerSessionLocked(peer string, id ratchet.SessionID) *ratchet.Session {
	if r := e.recordLocked(peer); r != nil {
		return r.sessions[hex.EncodeToString(id[:])]
	}
	return nil
}

// sessionByIDLocked finds any session (active or not) by its ratchet ID,
// whoever it is with (first contact: the sender is not known yet).
func (e *Engine) sessionByIDLocked(id ratchet.SessionID) *ratchet.Session {
	want := "/" + hex.EncodeToString(id[:])
	keys, _ := e.kv.List("session/")
	for _, k := range keys {
		if !strings.HasSuffix(k, want) {
			continue
		}
		if s := e.peerSessionLocked(strings.TrimSuffix(k[len("session/"):], want), id); s != nil {
			return s
		}
	}
	return nil
}

// saveSessionTo writes a session of peer's record to w after it changed.
func saveSessionTo(w kvWriter, peer string, s *ratchet.Session) error {
	b, err := s.Marshal()
	if err != nil {
		return err
	}
	return w.Put(sessionKeyOf(peer, s.ID()), b)
}

// addSessionLocked adds a new session to peer's record (creating it),
// decides which session is active and writes both to w. Call
// pruneSessionsLocked once w is committed.
func (e *Engine) addSessionLocked(peer string, s *ratchet.Session, w kvWriter) error {
	now := e.now()
	id := s.ID()
	idHex := hex.EncodeToString(id[:])
	r := e.recordLocked(peer)
	if r == nil {
		r = &sessionRecord{Created: map[string]time.Time{}, sessions: map[string]*ratchet.Session{}}
	}
	r.sessions[idHex] = s
	r.Created[idHex] = now
	switch cur := r.Active; {
	case cur == "" || r.sessions[cur] == nil:
		r.Active = idHex
	case now.Sub(r.Created[cur]) < crossingWindow:
		if curID := r.sessions[cur].ID(); bytes.Compare(id[:], curID[:]) > 0 {
			r.Active = idHex
		}
	default:
		r.Active = idHex
	}
	e.sessions[peer] = r
	if err := saveSessionTo(w, peer, s); err != nil {
		return err
	}
	return putJSON(w, sessionMetaKey(peer), r)
}

// pruneSessionsLocked drops peer's oldest inactive sessions beyond
// maxSessionsPerPeer: the record is rewritten first, so it never names a
// session that is gone, and the active one is never dropped.
func (e *Engine) pruneSessionsLocked(peer string) error {
	r := e.recordLocked(peer)
	if r == nil || len(r.sessions) <= maxSessionsPerPeer {
		return nil
	}
	var others []string
	for k := range r.sessions {
		if k != r.Active {
			others = append(others, k)
		}
	}
	slices.SortFunc(others, func(a, b string) int { return r.Created[a].Compare(r.Created[b]) })
	drop := others[:len(r.sessions)-maxSessionsPerPeer]
	for _, k := range drop {
		delete(r.sessions, k)
		delete(r.Created, k)
	}
	if err := e.d.putJSON(sessionMetaKey(peer), r); err != nil {
		return err
	}
	for _, k := range drop {
		if err := e.kv.Delete(sessionsPrefix(peer) + k); err != nil {
			return err
		}
	}
	return nil
}

// forgetPeerLocked drops the cached record of peer, so the next use reloads
// it from the database: after a failed write, memory must not run ahead of
// what is stored.
func (e *Engine) forgetPeerLocked(peer string) { delete(e.sessions, peer) }
