package client

import (
	"io"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
)

// FuzzApplyOp: whatever a peer sends as an action, applyOp changes only a
// message of the conversation with that peer, edits and deletes only the
// peer's own messages, adds no reaction but the peer's own (a valid one),
// and never stores a text over the limit.
func FuzzApplyOp(f *testing.F) {
	const me, peer, other = "me", "peer", "other"
	f.Add(uint16(envelope.KindEdit), []byte("new text"), false, true, int64(5))
	f.Add(uint16(envelope.KindDelete), []byte(nil), true, true, int64(5))
	f.Add(uint16(envelope.KindReaction), []byte("👍"), true, false, int64(5))
	f.Add(uint16(envelope.KindReaction), []byte("a\x00"), false, true, int64(-1))
	e := &Engine{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, kind uint16, body []byte, outgoing, fromPeer bool, sentAt int64) {
		m := &Message{ID: "00", Text: "old", Outgoing: outgoing, From: peer, To: me, SentAt: time.UnixMilli(1),
			Reactions: map[string]string{me: "❤️"}, OpsAt: map[string]int64{"r/" + me: 1}}
		if outgoing {
			m.From, m.To = me, peer
		}
		from := peer
		if !fromPeer {
			from = other
		}
		before := *m
		before.Reactions = maps.Clone(m.Reactions)
		changed := e.applyOp(m, from, envelope.Kind(kind), body, sentAt)
		if !changed {
			if m.Text != before.Text || m.Deleted || m.Edited || !maps.Equal(m.Reactions, before.Reactions) {
				t.Fatalf("unchanged by its own account, yet changed: %+v", m)
			}
			return
		}
		if from != peer {
			t.Fatalf("an action from another conversation applied: %+v", m)
		}
		if (m.Text != before.Text || m.Deleted) && outgoing {
			t.Fatalf("a peer changed our message: %+v", m)
		}
		if len(m.Text) > MaxTextBytes {
			t.Fatalf("a text of %d bytes stored", len(m.Text))
		}
		for who, emoji := range m.Reactions {
			if who != peer && who != me || ValidReaction(emoji) != nil || emoji == "" {
				t.Fatalf("reactions %q", m.Reactions)
			}
		}
		if m.Reactions[me] != before.Reactions[me] && !m.Deleted {
			t.Fatalf("the peer changed our reaction: %q", m.Reactions)
		}
	})
}
