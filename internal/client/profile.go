package client

// The user's profile (a display name and a small avatar) and the profiles
// contacts sent.
//
// A profile goes to a contact sealed like any message (a KindProfile
// content through enqueue): right after the first text to the contact, and
// to every contact already told an older one whenever it changes. The
// version each contact was told is kept under profiletold/PEER, as
// inboxtold/ keeps the inbox generation. Nothing about a profile ever
// travels outside the end-to-end encryption.
//
// A received profile is kept under peerprofile/PEER, apart from the name
// the user gave the contact (which wins for display, like a nickname).
// One is kept per account, newest counter only; a stranger's profile is
// kept too (it may overtake their first text), at one per account ID like
// the message request it comes with.

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
)

const (
	profileKey        = "profile"
	profileToldPrefix = "profiletold/"
	peerProfilePrefix = "peerprofile/"
)

// EventProfile says the user's own profile changed.
const EventProfile = "profile"

// Profile is the user's own profile.
type Profile struct {
	Name string `json:"name"`
	// Avatar is the encoded image (PNG or JPEG, see NormalizeAvatar).
	Avatar []byte `json:"avatar,omitempty"`
	// Version rises with every change; 0 means never set.
	Version uint64 `json:"version"`
}

// AvatarURL is the avatar as a data: URL ("" without one).
func (p *Profile) AvatarURL() string { return dataURL(p.Avatar) }

// PeerProfile is the profile a contact sent.
type PeerProfile struct {
	Name    string `json:"name,omitempty"`
	Avatar  []byte `json:"avatar,omitempty"`
	Counter uint64 `json:"counter"`
}

// dataURL makes a data: URL of an avatar that passed CheckAvatar.
func dataURL(img []byte) string {
	if len(img) == 0 {
		return ""
	}
	mime, err := CheckAvatar(img)
	if err != nil {
		return ""
	}
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(img)
}

// Profile returns the user's profile.
func (e *Engine) Profile() (*Profile, error) {
	var p Profile
	if _, err := e.d.getJSON(profileKey, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ProfileUpdate changes the profile: Name when set, the avatar to Avatar
// (an uploaded image, normalized here) when set, or none when ClearAvatar.
type ProfileUpdate struct {
	Name        *string
	Avatar      []byte
	ClearAvatar bool
}

// SetProfile changes the profile and, when it changed, queues it for every
// contact that was told an earlier one (the others get it with the first
// message they are sent).
func (e *Engine) SetProfile(ctx context.Context, u ProfileUpdate) (*Profile, error) {
	var avatar []byte
	if len(u.Avatar) > 0 {
		if u.ClearAvatar {
			return nil, errors.New("give an avatar or clear it, not both")
		}
		var err error
		if avatar, err = NormalizeAvatar(u.Avatar); err != nil {
			return nil, err
		}
	}
	e.mu.Lock()
	p, err := e.Profile()
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	old := *p
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		if err := CheckProfileName(name); err != nil {
			e.mu.Unlock()
			return nil, err
		}
		p.Name = name
	}
	switch {
	case avatar != nil:
		p.Avatar = avatar
	case u.ClearAvatar:
		p.Avatar = nil
	}
	changed := p.Name != old.Name || string(p.Avatar) != string(old.Avatar)
	if changed {
		p.Version++
		if err := e.d.putJSON(profileKey, p); err != nil {
			e.mu.Unlock()
			return nil, err
		}
	}
	e.mu.Unlock()
	if !changed {
		return p, nil
	}
	e.bus.publish(Event{Type: EventProfile})
	keys, err := e.kv.List(profileToldPrefix)
	if err != nil {
		return p, err
	}
	for _, k := range keys {
		peer := strings.TrimPrefix(k, profileToldPrefix)
		if c, _ := e.d.contact(peer); c == nil || c.State != ContactAccepted {
			continue
		}
		e.tellProfile(ctx, peer)
	}
	return p, nil
}

// profileTold is the profile version peer was told (0: none).
func (e *Engine) profileTold(peer string) uint64 {
	v, ok, err := e.kv.Get(profileToldPrefix + peer)
	if err != nil || !ok || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// tellProfile queues the profile for peer if it was not told the current
// one. Failures are logged: the next text tries again.
func (e *Engine) tellProfile(ctx context.Context, peer string) {
	p, err := e.Profile()
	if err != nil || p.Version == 0 || e.profileTold(peer) >= p.Version {
		return
	}
	aid, err := identity.ParseAccountID(peer)
	if err != nil {
		return
	}
	body, err := (&profileBody{Version: profileVersion, Counter: p.Version, Name: p.Name, Avatar: p.Avatar}).encode()
	if err != nil {
		e.log.Warn("encode profile", "err", err)
		return
	}
	c, err := envelope.NewContent(nil, envelope.KindProfile, body, e.clock())
	if err != nil {
		e.log.Warn("profile", "err", err)
		return
	}
	if err := e.enqueue(ctx, aid, c, nil); err != nil {
		e.log.Info("could not queue the profile", "to", short(peer), "err", err)
		return
	}
	if err := e.kv.Put(profileToldPrefix+peer, binary.BigEndian.AppendUint64(nil, p.Version)); err != nil {
		e.log.Warn("profile", "err", err)
	}
}

// receiveProfileLocked keeps a profile from a peer if it is newer than the
// one held; a malformed one is dropped.
func (e *Engine) receiveProfileLocked(b *batch, from string, c *envelope.Content) ([]Event, error) {
	p, err := parseProfile(c.Body)
	if err != nil {
		e.log.Info("dropped a malformed profile", "from", short(from), "err", err)
		return nil, nil
	}
	if old := e.peerProfile(from); old != nil && old.Counter >= p.Counter {
		return nil, nil
	}
	if err := putJSON(b, peerProfilePrefix+from, &PeerProfile{Name: p.Name, Avatar: p.Avatar, Counter: p.Counter}); err != nil {
		return nil, err
	}
	ct, _ := e.d.contact(from)
	if ct == nil {
		return nil, nil // shown when their text arrives
	}
	return []Event{{Type: EventContact, Contact: ct}}, nil
}

// peerProfile is the profile peer sent, nil if none.
func (e *Engine) peerProfile(peer string) *PeerProfile {
	var p PeerProfile
	if ok, err := e.d.getJSON(peerProfilePrefix+peer, &p); err != nil || !ok {
		return nil
	}
	return &p
}

// PeerProfile is the profile peer sent (name and avatar), nil if none.
func (e *Engine) PeerProfile(peer string) *PeerProfile { return e.peerProfile(peer) }

// decorateConv adds what the peer's profile and the conversation's timer
// say to a conversation.
func (e *Engine) decorateConv(conv *Conversation) {
	if p := e.peerProfile(conv.Peer); p != nil {
		conv.ProfileName = p.Name
		conv.Avatar = dataURL(p.Avatar)
	}
	conv.Timer = e.timerOf(conv.Peer)
}
