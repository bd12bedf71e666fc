package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/group/membership"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// What the user does with groups: create, change membership and info,
// accept or decline, leave, send.

// groupOut is a control to send pairwise to several accounts, kept until
// every one has it in the outbox: groupq/ID. Done counts those queued.
type groupOut struct {
	To   []string `json:"to"`
	Body []byte   `json:"body"`
	Done int      `json:"done"`
}

// groupIn is a control received pairwise, kept until the group worker has
// applied it: groupin/ID.
type groupIn struct {
	From string    `json:"from"`
	Body []byte    `json:"body"`
	At   time.Time `json:"at"`
}

// logOps is a log's ops in its total order (membership.Log.Marshal's form).
type logOps struct {
	Version uint8    `cbor:"1,keyasint"`
	Ops     [][]byte `cbor:"2,keyasint"`
}

func allOps(l *membership.Log) ([][]byte, error) {
	b, err := l.Marshal()
	if err != nil {
		return nil, err
	}
	var f logOps
	if err := wire.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return f.Ops, nil
}

// rekeyOpsBytes bounds the ops a rekey's secret carries.
const rekeyOpsBytes = 32 << 10

// recentOps is the longest tail of ops (a causal order, the genesis left
// out) of at most limit bytes, always with the last op.
func recentOps(ops [][]byte, limit int) [][]byte {
	i, n := len(ops)-1, len(ops[len(ops)-1])
	for i > 1 && n+len(ops[i-1]) <= limit {
		i--
		n += len(ops[i])
	}
	return ops[i:]
}

// parseMembers turns account IDs into a sorted, duplicate-free list
// without our own.
func (e *Engine) parseMembers(ids []string) ([]identity.AccountID, error) {
	var out []identity.AccountID
	for _, s := range ids {
		aid, err := identity.ParseAccountID(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", s, err)
		}
		if aid == e.acct.ID() || slices.Contains(out, aid) {
			continue
		}
		out = append(out, aid)
	}
	return out, nil
}

// queueControlTo writes to b a control for the accounts to.
func queueControlTo(b *batch, to []identity.AccountID, ctl *groupControl) error {
	if len(to) == 0 {
		return nil
	}
	body, err := wire.Marshal(ctl)
	if err != nil {
		return err
	}
	if len(body) > envelope.MaxBodySize {
		return fmt.Errorf("the group's log (%d KiB) is too large to send to a new member", len(body)>>10)
	}
	out := groupOut{Body: body}
	for _, a := range to {
		out.To = append(out.To, a.String())
	}
	return putJSON(b, groupOutPrefix+newMessageID(), out)
}

// CreateGroup creates a group with us as its admin and invites members
// (account IDs). Members who have us as a contact join at once; others get
// an invitation to accept or decline.
func (e *Engine) CreateGroup(ctx context.Context, name, description string, members []string) (*Group, error) {
	ids, err := e.parseMembers(members)
	if err != nil {
		return nil, err
	}
	if len(ids)+1 > membership.MaxMembers {
		return nil, fmt.Errorf("a group has at most %d members", membership.MaxMembers)
	}
	e.gmu.Lock()
	defer e.gmu.Unlock()
	if n, _ := e.kv.List(groupPrefix); len(n) >= maxGroups*3 {
		return nil, fmt.Errorf("this account is in %d groups already", maxGroups)
	}
	l, genesis, secret, err := membership.NewGroup(e.acct, membership.Info{Name: strings.TrimSpace(name), Description: description}, nil, ids)
	if err != nil {
		return nil, err
	}
	gid := hexOf(l.ID())
	gs := &groupState{log: l, meta: groupMeta{ID: gid, Status: GroupJoined, Since: e.now(),
		Secrets: map[string][]byte{gid: secret}}}
	if e.groups == nil {
		e.groups = map[string]*groupState{}
	}
	var b batch
	events := e.lineLocked(&b, gs, genesis)
	more, _, err := e.refreshLocked(&b, gs)
	if err != nil {
		return nil, err
	}
	events = append(events, more...)
	gen, _ := genesis.Marshal()
	h := genesis.Hash()
	if err := queueControlTo(&b, ids, &groupControl{Group: h[:], Type: ctlInvite, Ops: [][]byte{gen}, SecretOp: h[:], Secret: secret}); err != nil {
		return nil, err
	}
	e.groups[gid] = gs
	if err := e.commitGroupLocked(&b, gs); err != nil {
		return nil, err
	}
	e.publishAll(events)
	e.kickGroups()
	return e.groupView(gs)
}

func (e *Engine) publishAll(events []Event) {
	for _, ev := range events {
		e.bus.publish(ev)
	}
}

// memberGroupLocked loads a group we take part in.
func (e *Engine) memberGroupLocked(gid string) (*groupState, error) {
	gs, err := e.loadGroupLocked(gid)
	if err != nil {
		return nil, err
	}
	if gs == nil {
		return nil, ErrNoGroup
	}
	switch gs.meta.Status {
	case GroupJoined:
		return gs, nil
	case GroupInvited:
		return nil, errors.New("accept the invitation first")
	}
	return nil, fmt.Errorf("you are no longer in this group (%s)", gs.meta.Status)
}

// changeGroup proposes a membership or info change, posts it to the
// group's mailbox, sends fresh secrets or invitations pairwise, and moves
// to the new epoch.
func (e *Engine) changeGroup(ctx context.Context, ref string, c membership.Change) (*Group, error) {
	gid, err := e.resolveGroup(ref)
	if err != nil {
		return nil, err
	}
	e.gmu.Lock()
	defer e.gmu.Unlock()
	gs, err := e.memberGroupLocked(gid)
	if err != nil {
		return nil, err
	}
	rekey, err := e.changeLocked(gs, c)
	if err != nil {
		return nil, err
	}
	if rekey {
		if _, err := e.changeLocked(gs, membership.Change{Kind: membership.OpRekey}); err != nil {
			e.log.Warn("group rekey", "group", short(gid), "err", err)
		}
	}
	return e.groupView(gs)
}

// changeLocked does the work of changeGroup for a loaded group.
func (e *Engine) changeLocked(gs *groupState, c membership.Change) (rekey bool, err error) {
	old, haveOld := gs.currentSecret()
	op, secret, err := gs.log.Propose(e.acct, c)
	if err != nil {
		delete(e.groups, gs.meta.ID) // Propose may have applied it: reload
		return false, friendlyGroupError(err)
	}
	var b batch
	fail := func(err error) (bool, error) {
		delete(e.groups, gs.meta.ID)
		return false, err
	}
	raw, _ := op.Marshal()
	if haveOld {
		// Into the mailbox of the epoch the op ends, so that every member
		// of that epoch (a removed one too) learns of it.
		if err := e.postLocked(&b, gs.meta.ID, old, groupRecord{Kind: recOp, Data: raw}, ""); err != nil {
			return fail(err)
		}
	}
	h := op.Hash()
	if secret != nil {
		gs.meta.Secrets[hexOf(h)] = secret
	}
	var cuts []chainCutoff
	if c.Kind == membership.OpRemove {
		cuts = e.chainCutoffs(gs.meta.ID, c.Members) // before the chains are marked former
	}
	if c.Kind == membership.OpLeave {
		gs.meta.Status = GroupLeft
		gs.own, gs.meta.OwnOp = nil, ""
		for i := range gs.meta.Boxes {
			if gs.meta.Boxes[i].Until.IsZero() {
				gs.meta.Boxes[i].Until = e.now()
			}
		}
	}
	events := e.lineLocked(&b, gs, op)
	more, rekey, err := e.refreshLocked(&b, gs)
	if err != nil {
		return fail(err)
	}
	events = append(events, more...)
	st := gs.log.State()
	switch c.Kind {
	case membership.OpAdd:
		ops, err := allOps(gs.log)
		if err != nil {
			return fail(err)
		}
		if err := queueControlTo(&b, c.Members, &groupControl{Group: mustHex(gs.meta.ID), Type: ctlInvite, Ops: ops, SecretOp: h[:], Secret: secret}); err != nil {
			return fail(err)
		}
	case membership.OpRemove, membership.OpRekey:
		var to []identity.AccountID
		for id := range st.Members {
			if id != e.acct.ID() {
				to = append(to, id)
			}
		}
		ops := [][]byte{raw}
		if c.Kind == membership.OpRekey {
			// A rekey repairs diverged views (concurrent changes): some
			// members may lack recent ops, so the latest ones go along.
			all, err := allOps(gs.log)
			if err != nil {
				return fail(err)
			}
			ops = recentOps(all, rekeyOpsBytes)
		}
		if err := queueControlTo(&b, to, &groupControl{Group: mustHex(gs.meta.ID), Type: ctlSecret, Ops: ops, SecretOp: h[:], Secret: secret, Cutoffs: cuts}); err != nil {
			return fail(err)
		}
	}
	if err := e.commitGroupLocked(&b, gs); err != nil {
		return false, err
	}
	if len(cuts) > 0 {
		e.applyCutoffs(gs.meta.ID, cuts)
	}
	e.publishAll(events)
	e.kickGroups()
	return rekey, nil
}

var errWaitKey = errors.New("waiting for this group's new key from an admin: try again shortly")

// friendlyGroupError says what a refused change means for the user.
func friendlyGroupError(err error) error {
	if errors.Is(err, membership.ErrNoSecret) {
		return errWaitKey
	}
	if errors.Is(err, membership.ErrInvalidChange) {
		s := err.Error()
		if i := strings.Index(s, ": "); i >= 0 {
			s = s[i+2:]
		}
		return errors.New(s)
	}
	return err
}

// AddGroupMembers adds members (admins only). Each new member gets the
// group's log and epoch secret pairwise; everyone moves to a new epoch
// whose secret the newcomers cannot invert, so they read nothing sent
// before.
func (e *Engine) AddGroupMembers(ctx context.Context, ref string, members []string) (*Group, error) {
	ids, err := e.parseMembers(members)
	if err != nil || len(ids) == 0 {
		return nil, cmpErr(err, "name at least one member to add")
	}
	return e.changeGroup(ctx, ref, membership.Change{Kind: membership.OpAdd, Members: ids})
}

// RemoveGroupMembers removes members (admins only). The remaining members
// get a fresh epoch secret pairwise and make new chains: the removed ones
// cannot read what is sent after.
func (e *Engine) RemoveGroupMembers(ctx context.Context, ref string, members []string) (*Group, error) {
	ids, err := e.parseMembers(members)
	if err != nil || len(ids) == 0 {
		return nil, cmpErr(err, "name at least one member to remove")
	}
	return e.changeGroup(ctx, ref, membership.Change{Kind: membership.OpRemove, Members: ids})
}

// PromoteGroupMembers makes members admins (admins only).
func (e *Engine) PromoteGroupMembers(ctx context.Context, ref string, members []string) (*Group, error) {
	ids, err := e.parseMembers(members)
	if err != nil || len(ids) == 0 {
		return nil, cmpErr(err, "name at least one member to promote")
	}
	return e.changeGroup(ctx, ref, membership.Change{Kind: membership.OpPromote, Members: ids})
}

// DemoteGroupMembers makes admins plain members (admins only; one admin
// must remain).
func (e *Engine) DemoteGroupMembers(ctx context.Context, ref string, members []string) (*Group, error) {
	ids, err := e.parseMembers(members)
	if err != nil || len(ids) == 0 {
		return nil, cmpErr(err, "name at least one admin to demote")
	}
	return e.changeGroup(ctx, ref, membership.Change{Kind: membership.OpDemote, Members: ids})
}

// SetGroupInfo changes the group's name and description (admins only);
// the avatar stays.
func (e *Engine) SetGroupInfo(ctx context.Context, ref, name, description string) (*Group, error) {
	info, err := e.groupInfo(ref)
	if err != nil {
		return nil, err
	}
	info.Name, info.Description = strings.TrimSpace(name), description
	return e.changeGroup(ctx, ref, membership.Change{Kind: membership.OpSetInfo, Info: info})
}

// SetGroupAvatar sets the group's picture from an uploaded PNG, JPEG or
// GIF (scaled to 96x96 and re-encoded to at most 16 KiB, as profile
// pictures are, so no metadata goes along); nil removes it. Admins only.
func (e *Engine) SetGroupAvatar(ctx context.Context, ref string, image []byte) (*Group, error) {
	info, err := e.groupInfo(ref)
	if err != nil {
		return nil, err
	}
	info.Avatar, info.AvatarHash = nil, nil
	if image != nil {
		if info.Avatar, err = normalizeAvatar(image, membership.MaxAvatarSize); err != nil {
			return nil, err
		}
	}
	return e.changeGroup(ctx, ref, membership.Change{Kind: membership.OpSetInfo, Info: info})
}

// GroupAvatar is the group's picture and its MIME type (nil if none).
func (e *Engine) GroupAvatar(ref string) ([]byte, string, error) {
	info, err := e.groupInfo(ref)
	if err != nil || len(info.Avatar) == 0 {
		return nil, "", err
	}
	mime, err := checkGroupAvatar(info.Avatar)
	if err != nil {
		return nil, "", err
	}
	return info.Avatar, mime, nil
}

// checkGroupAvatar checks an avatar an admin put in the log, as a
// profile picture is checked (size and header), before it is shown.
func checkGroupAvatar(b []byte) (string, error) { return CheckAvatar(b) }

// groupInfo is a copy of the group's current info.
func (e *Engine) groupInfo(ref string) (*membership.Info, error) {
	var info membership.Info
	err := e.withGroup(ref, func(gs *groupState) error {
		info = gs.log.State().Info
		return nil
	})
	return &info, err
}

// LeaveGroup leaves a group: the others are told, an admin gives them a
// fresh secret, and this client stops reading it.
func (e *Engine) LeaveGroup(ctx context.Context, ref string) (*Group, error) {
	return e.changeGroup(ctx, ref, membership.Change{Kind: membership.OpLeave})
}

func cmpErr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// AcceptGroup accepts an invitation: we hand out our chain and take part.
func (e *Engine) AcceptGroup(ctx context.Context, ref string) (g *Group, err error) {
	err = e.withGroup(ref, func(gs *groupState) error {
		if gs.meta.Status != GroupInvited {
			return fmt.Errorf("there is no invitation to accept (you are %s)", gs.meta.Status)
		}
		gs.meta.Status = GroupJoined
		var b batch
		events, _, err := e.refreshLocked(&b, gs)
		if err != nil {
			delete(e.groups, gs.meta.ID)
			return err
		}
		if err := e.commitGroupLocked(&b, gs); err != nil {
			return err
		}
		e.publishAll(events)
		e.kickGroups()
		g, err = e.groupView(gs)
		return err
	})
	return g, err
}

// DeclineGroup declines an invitation: we leave the group at once.
func (e *Engine) DeclineGroup(ctx context.Context, ref string) (g *Group, err error) {
	err = e.withGroup(ref, func(gs *groupState) error {
		if gs.meta.Status != GroupInvited {
			return fmt.Errorf("there is no invitation to decline (you are %s)", gs.meta.Status)
		}
		if _, err := e.changeLocked(gs, membership.Change{Kind: membership.OpLeave}); err != nil {
			return err
		}
		gs.meta.Status = GroupDeclined
		var b batch
		if err := e.saveGroupTo(&b, gs); err != nil {
			return err
		}
		if err := e.commitGroupLocked(&b, gs); err != nil {
			return err
		}
		g, err = e.groupView(gs)
		return err
	})
	return g, err
}

// SendGroup sends a text to a group: one encryption with our chain, one
// write to the group's mailbox. replyTo, when set, is the ID (or a unique
// prefix) of the group message it quotes. With wait it returns once the
// network holds it (or ctx ends).
func (e *Engine) SendGroup(ctx context.Context, ref, text, replyTo string, wait bool) (*Message, error) {
	if err := checkText(text); err != nil {
		return nil, err
	}
	gid, err := e.resolveGroup(ref)
	if err != nil {
		return nil, err
	}
	c, err := envelope.NewContent(nil, envelope.KindText, []byte(text), e.clock())
	if err != nil {
		return nil, err
	}
	m := &Message{ID: idOf(c), Group: gid, From: e.AccountID(), To: groupPeer(gid), Text: text,
		SentAt: time.UnixMilli(c.SentAt), State: StateQueued, Outgoing: true}
	if replyTo != "" {
		q, err := e.findMessage(groupPeer(gid), replyTo)
		if err != nil {
			return nil, fmt.Errorf("reply: %w", err)
		}
		ref, _ := hex.DecodeString(q.ID)
		c.Refs, m.ReplyTo = [][]byte{ref}, q.ID
	}
	e.stampTimer(c, m) // the group's disappearing-message timer
	watch, stop := e.Subscribe()
	defer stop()
	if err := e.sendGroupContent(gid, c, m, nil); err != nil {
		return nil, err
	}
	e.bus.publish(Event{Type: EventMessage, Message: m})
	if !wait {
		return m, nil
	}
	for {
		select {
		case ev := <-watch:
			if ev.Message != nil && ev.Message.ID == m.ID && ev.Message.State != StateQueued {
				if ev.Message.State == StateFailed {
					return ev.Message, errors.New(ev.Message.Error)
				}
				return ev.Message, nil
			}
		case <-ctx.Done():
			return m, nil
		}
	}
}

// sendGroupContent encrypts c with our chain and queues it for the
// group's mailbox, with m (a chat message, or nil) and whatever then
// writes, in one transaction with the advanced chain.
func (e *Engine) sendGroupContent(gid string, c *envelope.Content, m *Message, then func(b *batch) error) error {
	e.gmu.Lock()
	defer e.gmu.Unlock()
	gs, err := e.memberGroupLocked(gid)
	if err != nil {
		return err
	}
	secret, ok := gs.currentSecret()
	if !ok || gs.own == nil {
		return errWaitKey
	}
	pt, err := c.Encode()
	if err != nil {
		return err
	}
	ct, err := gs.own.Encrypt(pt, groupAD(mustHex(gid), secret))
	if err != nil {
		delete(e.groups, gid)
		return err
	}
	var b batch
	msgID := ""
	if m != nil {
		msgID = m.ID
		if err := saveMessageTo(&b, m); err != nil {
			return err
		}
	}
	if err := e.postLocked(&b, gid, secret, groupRecord{Kind: recMsg, Data: ct}, msgID); err != nil {
		delete(e.groups, gid)
		return err
	}
	if err := e.saveOwnTo(&b, gs); err != nil {
		delete(e.groups, gid)
		return err
	}
	if then != nil {
		e.mu.Lock()
		err := then(&b)
		e.mu.Unlock()
		if err != nil {
			delete(e.groups, gid)
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.commitGroupLocked(&b, gs)
}

// MarkGroupRead marks a group's incoming messages read and owes read
// receipts for them (posted to the group, batched; none when the user
// turned read receipts off).
func (e *Engine) MarkGroupRead(ctx context.Context, ref string) (int, error) {
	return e.MarkRead(ctx, groupPeerPrefix+ref)
}

// sendGroupReceipt posts a receipt for group messages to the group.
func (e *Engine) sendGroupReceipt(gid string, kind envelope.Kind, ids []string) error {
	var refs []envelope.MessageID
	for _, h := range ids {
		var id envelope.MessageID
		if b, err := hex.DecodeString(h); err == nil && len(b) == len(id) {
			refs = append(refs, envelope.MessageID(b))
		}
	}
	if len(refs) == 0 {
		return nil
	}
	c, err := envelope.NewReceipt(nil, kind, refs, e.now())
	if err != nil {
		return err
	}
	err = e.sendGroupContent(gid, c, nil, nil)
	if err != nil && !errors.Is(err, ErrNoGroup) {
		e.log.Debug("group receipt", "err", err)
	}
	return nil
}
