package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/umbra-im/umbra/internal/cover"
	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/group/membership"
	"github.com/umbra-im/umbra/internal/group/senderkey"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/keystore"
	"github.com/umbra-im/umbra/internal/swarmclient"
)

// The group worker: applies controls that came pairwise, queues the
// controls we owe others, and reads the groups' mailboxes.

// groupSweepEvery is how often the mailboxes that are not long-polled
// (the previous time epoch's, and those of replaced epoch secrets) are
// read; for groupFastFor after a membership change, every
// groupFastSweep, since members who have not heard of the change yet
// still write to the mailbox it replaced.
const (
	groupSweepEvery = 30 * time.Second
	groupFastSweep  = 3 * time.Second
	groupFastFor    = 2 * time.Minute
)

// A fresh secret can overtake the invitation to its group (they come on
// different pairwise sessions, from different admins): it is kept, at
// most maxControlsKept of them for groupControlWait, and tried again.
var errGroupNotYet = errors.New("a secret for a group we are not in (yet)")

const (
	groupControlWait = time.Hour
	maxControlsKept  = 64
)

// heldMsg is a group message whose chain has not been handed out to us
// yet: gheld/GROUP/HASH.
type heldMsg struct {
	Secret []byte    `json:"secret"` // of the mailbox it came from
	Data   []byte    `json:"data"`   // the sender-key message
	At     time.Time `json:"at"`
}

// groupReadKey names one mailbox of a group: its epoch secret and time
// epoch.
type groupReadKey struct {
	gid, op string
	te      uint64
}

// groupLoop runs the group worker until ctx ends.
func (e *Engine) groupLoop(ctx context.Context) {
	readers := map[groupReadKey]context.CancelFunc{}
	defer func() {
		for _, cancel := range readers {
			cancel()
		}
	}()
	var lastSweep time.Time
	for ctx.Err() == nil {
		e.drainGroupIn()
		e.drainGroupOut(ctx)
		e.syncGroupReaders(ctx, readers)
		every := groupSweepEvery
		e.gmu.Lock()
		if e.now().Before(e.gfastUntil) {
			every = groupFastSweep
		}
		e.gmu.Unlock()
		if time.Since(lastSweep) >= every {
			lastSweep = time.Now()
			e.sweepGroups(ctx, false)
		}
		t := time.NewTimer(2 * time.Second)
		select {
		case <-ctx.Done():
		case <-e.gkick:
		case <-t.C:
		}
		t.Stop()
	}
}

// drainGroupIn applies the controls received pairwise.
func (e *Engine) drainGroupIn() {
	keys, err := e.kv.List(groupInPrefix)
	if err != nil {
		return
	}
	kept := 0
	for _, k := range keys {
		var in groupIn
		if ok, err := e.d.getJSON(k, &in); err == nil && ok {
			err := e.handleControl(in.From, in.Body)
			if errors.Is(err, errGroupNotYet) && e.now().Sub(in.At) < groupControlWait && kept < maxControlsKept {
				kept++ // the invitation may come after it, on another session
				continue
			}
			if err != nil {
				e.log.Warn("ignored a group control", "from", short(in.From), "err", err)
			}
		}
		if err := e.kv.Delete(k); err != nil {
			e.log.Error("group control", "err", err)
		}
	}
}

// handleControl applies one control from a pairwise session.
func (e *Engine) handleControl(from string, body []byte) error {
	ctl, err := parseGroupControl(body)
	if err != nil {
		return err
	}
	fromID, err := identity.ParseAccountID(from)
	if err != nil {
		return err
	}
	gid := hex.EncodeToString(ctl.Group)
	e.gmu.Lock()
	defer e.gmu.Unlock()
	gs, err := e.loadGroupLocked(gid)
	if err != nil {
		return err
	}
	var b batch
	var events []Event
	fresh := gs == nil
	if fresh {
		if ctl.Type != ctlInvite {
			return errGroupNotYet
		}
		if n, _ := e.kv.List(groupPrefix); len(n) >= maxGroups*3 {
			return errors.New("too many groups")
		}
		g, err := membership.ParseOp(ctl.Ops[0])
		if err != nil {
			return err
		}
		l, err := membership.FromGenesis(g)
		if err != nil {
			return err
		}
		if hexOf(l.ID()) != gid {
			return errors.New("an invitation whose log is of another group")
		}
		status := GroupInvited
		if c, _ := e.d.contact(from); c != nil && c.State == ContactAccepted {
			status = GroupJoined // from a contact: joined at once
		}
		if c, _ := e.d.contact(from); c != nil && c.State == ContactBlocked {
			return nil
		}
		gs = &groupState{log: l, meta: groupMeta{ID: gid, Status: status, InvitedBy: from, Since: e.now(),
			Secrets: map[string][]byte{}}}
	}
	for _, raw := range ctl.Ops {
		_, evs, err := e.applyGroupOpLocked(&b, gs, raw)
		if err != nil && fresh {
			return err
		}
		if !fresh {
			events = append(events, evs...)
		}
	}
	sop, ok := gs.log.Op([32]byte(ctl.SecretOp))
	switch {
	case ok && sop.AuthorID() != fromID:
		return errors.New("a secret sent by someone other than its op's author")
	case ok:
		if err := gs.log.ReceiveSecret([32]byte(ctl.SecretOp), ctl.Secret); err != nil {
			return err
		}
		gs.meta.Secrets[hex.EncodeToString(ctl.SecretOp)] = ctl.Secret
	case fresh:
		return errors.New("an invitation without the op that added us")
	default:
		if gs.meta.PendingSecrets == nil {
			gs.meta.PendingSecrets = map[string][]byte{}
		}
		if len(gs.meta.PendingSecrets) < maxPendingSecrets {
			gs.meta.PendingSecrets[hex.EncodeToString(ctl.SecretOp)] = ctl.Secret
		}
	}
	if _, in := gs.log.State().Members[e.acct.ID()]; fresh && !in {
		return errors.New("an invitation to a group we are not a member of")
	}
	if fresh {
		if e.groups == nil {
			e.groups = map[string]*groupState{}
		}
		e.groups[gid] = gs
		if ok {
			events = append(events, e.lineLocked(&b, gs, sop)...) // "X added you"
		}
	}
	more, rekey, err := e.refreshLocked(&b, gs)
	if err != nil {
		delete(e.groups, gid)
		return err
	}
	events = append(events, more...)
	e.mu.Lock()
	err = e.commitGroupLocked(&b, gs)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	e.publishAll(events)
	if len(ctl.Cutoffs) > 0 && ok && sop.Kind == membership.OpRemove {
		// Only for the members this removal removed.
		var cuts []chainCutoff
		for _, c := range ctl.Cutoffs {
			if slices.ContainsFunc(sop.Members, func(m []byte) bool { return bytes.Equal(m, c.Member) }) {
				cuts = append(cuts, c)
			}
		}
		e.applyCutoffs(gid, cuts)
		e.retryHeldLocked(gs)
	}
	if rekey {
		if _, err := e.changeLocked(gs, membership.Change{Kind: membership.OpRekey}); err != nil {
			e.log.Warn("group rekey", "group", short(gid), "err", err)
		}
	}
	return nil
}

// drainGroupOut puts the controls we owe into the outbox, one recipient
// at a time, each in the same transaction as the progress mark. The mark
// is a key of its own (groupqd/ID), not the control's record: that holds
// every recipient and the body (for an invitation, the whole log), and
// writing it again for each of a thousand members wrote O(N^2) bytes.
func (e *Engine) drainGroupOut(ctx context.Context) {
	if e.net == nil {
		return
	}
	e.goutMu.Lock() // one drainer at a time (the worker, SyncOnce): each control once
	defer e.goutMu.Unlock()
	keys, err := e.kv.List(groupOutPrefix)
	if err != nil {
		return
	}
	for _, k := range keys {
		var out groupOut
		if ok, err := e.d.getJSON(k, &out); err != nil || !ok {
			continue
		}
		dk := groupOutDonePre + strings.TrimPrefix(k, groupOutPrefix)
		done := out.Done
		if v, ok, err := e.kv.Get(dk); err != nil {
			continue
		} else if ok {
			if n, err := strconv.Atoi(string(v)); err == nil && n > done {
				done = n
			}
		}
		for done < len(out.To) && ctx.Err() == nil {
			to := out.To[done]
			done++
			aid, err := identity.ParseAccountID(to)
			if err != nil {
				continue
			}
			c, err := envelope.NewContent(nil, envelope.KindGroup, out.Body, e.now())
			if err != nil {
				break
			}
			mark := []byte(strconv.Itoa(done))
			cctx, cancel := groupCtx(ctx)
			err = e.enqueueWith(cctx, aid, c, nil, enqueueOpts{then: func(b *batch) error { b.Put(dk, mark); return nil }})
			cancel()
			if err != nil {
				e.log.Info("group control: will retry", "to", short(to), "err", err)
				done--
				break
			}
		}
		if done >= len(out.To) {
			if err := e.kv.Delete(k); err != nil {
				e.log.Error("group control", "err", err)
			}
			if err := e.kv.Delete(dk); err != nil {
				e.log.Error("group control", "err", err)
			}
		}
	}
}

// groupBoxes lists the mailboxes to read: for every group we are in (or
// invited to), each epoch secret still read, in this time epoch and the
// one before. live marks the one long-polled per group.
func (e *Engine) groupBoxes() (all []groupReadKey, live map[groupReadKey]bool, secrets map[groupReadKey][]byte) {
	live, secrets = map[groupReadKey]bool{}, map[groupReadKey][]byte{}
	keys, err := e.kv.List(groupPrefix)
	if err != nil {
		return nil, live, secrets
	}
	te := groupTE(e.now())
	e.gmu.Lock()
	defer e.gmu.Unlock()
	for _, k := range keys {
		gid, ok := strings.CutSuffix(strings.TrimPrefix(k, groupPrefix), "/meta")
		if !ok {
			continue
		}
		gs, err := e.loadGroupLocked(gid)
		if err != nil || gs == nil {
			continue
		}
		for i, bx := range gs.meta.Boxes {
			if !bx.Until.IsZero() && e.now().After(bx.Until) {
				continue
			}
			for _, t := range []uint64{te, te - 1} {
				rk := groupReadKey{gid, bx.Op, t}
				all = append(all, rk)
				secrets[rk] = bx.Secret
				if i == 0 && t == te && bx.Until.IsZero() && (gs.meta.Status == GroupJoined || gs.meta.Status == GroupInvited) {
					live[rk] = true
				}
			}
		}
	}
	return all, live, secrets
}

// syncGroupReaders keeps one long-poll per group, on its current mailbox.
func (e *Engine) syncGroupReaders(ctx context.Context, readers map[groupReadKey]context.CancelFunc) {
	_, live, secrets := e.groupBoxes()
	for rk, cancel := range readers {
		if !live[rk] {
			cancel()
			delete(readers, rk)
		}
	}
	for rk := range live {
		if _, ok := readers[rk]; ok {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		readers[rk] = cancel
		secret := secrets[rk]
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.readGroup(rctx, rk, secret)
		}()
	}
}

// readGroup long-polls one group mailbox with a cursor until ctx ends.
func (e *Engine) readGroup(ctx context.Context, rk groupReadKey, secret []byte) {
	key, _ := boxKey(secret, rk.te)
	cur := e.groupCursor(key.ID())
	backoff := 250 * time.Millisecond
	sleep(ctx, e.cfg.Schedule.pollGap())
	for ctx.Err() == nil {
		wait := e.cfg.Schedule.pollWait()
		if e.strict() {
			wait = 0 // the strict schedule spaces fetches itself
		}
		var msgs []swarmclient.Message
		err := e.do(ctx, cover.Fetch, func(ctx context.Context) error {
			var err error
			msgs, err = e.net.GetSince(ctx, key, cur, wait)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			sleep(ctx, backoff)
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
		e.processGroupMsgs(rk, secret, msgs)
		sleep(ctx, e.cfg.Schedule.pollGap())
		if groupTE(e.now()) != rk.te {
			return // the worker starts the next epoch's reader
		}
	}
}

// groupCursor is the read cursor of a group mailbox, kept in memory.
func (e *Engine) groupCursor(box [32]byte) *swarmclient.DropCursor {
	e.gmu.Lock()
	defer e.gmu.Unlock()
	if e.gcursors == nil {
		e.gcursors = map[[32]byte]*swarmclient.DropCursor{}
	}
	c, ok := e.gcursors[box]
	if !ok {
		c = &swarmclient.DropCursor{}
		e.gcursors[box] = c
	}
	return c
}

// sweepGroups reads, once and without waiting, the group mailboxes that
// are not long-polled (all of them with all, as SyncOnce does).
func (e *Engine) sweepGroups(ctx context.Context, all bool) error {
	boxes, live, secrets := e.groupBoxes()
	var errs []error
	for _, rk := range boxes {
		if live[rk] && !all {
			continue
		}
		key, _ := boxKey(secrets[rk], rk.te)
		cur := e.groupCursor(key.ID())
		var msgs []swarmclient.Message
		err := e.do(ctx, cover.Fetch, func(ctx context.Context) error {
			var err error
			msgs, err = e.net.GetSince(ctx, key, cur, 0)
			return err
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.processGroupMsgs(rk, secrets[rk], msgs)
	}
	if len(boxes) > 0 && len(errs) == len(boxes) {
		return fmt.Errorf("could not read any group mailbox: %w", errs[0])
	}
	return nil
}

// processGroupMsgs opens and applies what was read from a group mailbox.
func (e *Engine) processGroupMsgs(rk groupReadKey, secret []byte, msgs []swarmclient.Message) {
	if len(msgs) == 0 {
		return
	}
	key, ek := boxKey(secret, rk.te)
	box := key.ID()
	e.gmu.Lock()
	defer e.gmu.Unlock()
	gs, err := e.loadGroupLocked(rk.gid)
	if err != nil || gs == nil {
		return
	}
	e.mu.Lock()
	var b batch
	var events []Event
	owed := map[string][]string{}
	changed, newChain, sawOp := false, false, false
	for _, m := range msgs {
		if _, seen, _ := e.kv.Get(seenKey(m.Hash)); seen {
			continue
		}
		b.Put(seenKey(m.Hash), seenValue(m.Expiry))
		env, err := envelope.Parse(m.Data)
		if err != nil || env.Type != envelope.TypeGroup || m.Namespace != 0 {
			continue
		}
		rb, err := envelope.OpenGroup(ek[:], box[:], env)
		if err != nil {
			continue // junk from someone who knows the mailbox
		}
		rec, err := parseGroupRecord(rb)
		if err != nil {
			e.log.Debug("group record", "err", err)
			continue
		}
		switch rec.Kind {
		case recOp:
			sawOp = true
			ch, evs, err := e.applyGroupOpLocked(&b, gs, rec.Data)
			if err != nil {
				e.log.Debug("group op", "err", err)
			}
			changed = changed || ch
			events = append(events, evs...)
		case recDist:
			ok, err := e.receiveDistLocked(&b, gs, rec)
			if err != nil {
				e.log.Debug("group distribution", "err", err)
			}
			newChain = newChain || ok
		case recMsg:
			evs, err := e.receiveGroupMsgLocked(&b, gs, secret, rec.Data, m.Hash, owed)
			if err != nil {
				e.log.Debug("group message", "err", err)
			}
			events = append(events, evs...)
		}
	}
	var rekey bool
	if changed {
		more, rk2, err := e.refreshLocked(&b, gs)
		if err != nil {
			e.log.Warn("group refresh", "err", err)
		}
		events, rekey = append(events, more...), rk2
	} else if sawOp {
		// An op that changed nothing visible may still be pending or
		// rejected: keep the log and meta as they are now. Distributions
		// and messages change neither (nor our chain), so a batch of
		// those writes no group state.
		if err := e.saveGroupTo(&b, gs); err != nil {
			e.log.Warn("group save", "err", err)
		}
	}
	err = e.commitGroupLocked(&b, gs)
	e.mu.Unlock()
	if err != nil {
		e.log.Error("could not store group messages", "err", err)
		return
	}
	e.publishAll(events)
	for peer, ids := range owed {
		e.oweReceipts(peer, envelope.KindReceiptDelivered, ids)
	}
	if newChain {
		e.retryHeldLocked(gs)
	}
	if rekey {
		if _, err := e.changeLocked(gs, membership.Change{Kind: membership.OpRekey}); err != nil {
			e.log.Warn("group rekey", "err", err)
		}
	}
	if changed {
		e.kickGroups()
	}
}

// receiveDistLocked takes a member's chain: signed by a current member
// with its account key and bound to this group. Chains are kept by chain
// ID and member, so a member who hands out a chain under another's chain
// ID gets a chain of its own, tried (and signature-checked) beside the
// other's: it can neither take the other's place nor keep the other's
// chain out. It reports whether a new chain was stored.
func (e *Engine) receiveDistLocked(b *batch, gs *groupState, rec *groupRecord) (bool, error) {
	gid := mustHex(gs.meta.ID)
	if !rec.verify(gid) {
		return false, errors.New("bad signature")
	}
	author := identity.AccountID(rec.Author)
	if author == e.acct.ID() {
		return false, nil
	}
	if gs.log.Role(author) == 0 { // not State(): it copies the member list
		return false, errors.New("a distribution by a non-member")
	}
	d, err := senderkey.ParseDistribution(rec.Data)
	if err != nil {
		return false, err
	}
	defer d.Wipe()
	ck := chainKey(gs.meta.ID, d.ChainID.String()) + "/" + author.String()
	if _, ok, err := e.kv.Get(ck); err != nil {
		return false, err
	} else if ok {
		return false, nil // a duplicate
	}
	pc, err := senderkey.NewReceiverChain(d)
	if err != nil {
		return false, err
	}
	st, err := pc.Marshal()
	if err != nil {
		return false, err
	}
	// At most a few chains per member: the oldest go.
	idx := groupChainPre + "m/" + gs.meta.ID + "/" + author.String() + "/"
	keys, err := e.kv.List(idx)
	if err != nil {
		return false, err
	}
	if len(keys) >= maxChainsPerMember {
		for _, k := range keys[:len(keys)-maxChainsPerMember+1] {
			chain := k[strings.LastIndexByte(k, '/')+1:]
			e.kv.Delete(chainKey(gs.meta.ID, chain) + "/" + author.String())
			e.kv.Delete(k)
		}
	}
	b.Put(fmt.Sprintf("%s%016x/%s", idx, e.now().UnixNano(), d.ChainID), nil)
	return true, putJSON(b, ck, peerChainRec{Member: author.String(), Op: hex.EncodeToString(rec.Op), State: st, At: e.now()})
}

// receiveGroupMsgLocked decrypts a group message with its sender's chain
// and applies its content; one whose chain we do not hold yet is kept
// aside (heldMsg) until the chain comes.
func (e *Engine) receiveGroupMsgLocked(b *batch, gs *groupState, secret, data []byte, hash [32]byte, owed map[string][]string) ([]Event, error) {
	sm, err := senderkey.ParseMessage(data)
	if err != nil {
		return nil, err
	}
	if gs.ownChain(sm.ChainID) {
		// Our own, read back: it is in our conversation already. Kept
		// aside as waiting for its chain, our messages filled the
		// bounded queue of held ones (maxHeldPerGroup).
		return nil, nil
	}
	cands, err := e.kv.List(chainKey(gs.meta.ID, sm.ChainID.String()) + "/")
	if err != nil {
		return nil, err
	}
	hold := func() ([]Event, error) {
		if keys, _ := e.kv.List(groupHeldPre + gs.meta.ID + "/"); len(keys) >= maxHeldPerGroup {
			return nil, errors.New("too many group messages waiting for their chains")
		}
		return nil, putJSON(b, groupHeldPre+gs.meta.ID+"/"+hex.EncodeToString(hash[:]), heldMsg{Secret: secret, Data: data, At: e.now()})
	}
	if len(cands) == 0 {
		return hold()
	}
	// The chain's signing key decides among candidates (the signature
	// is checked before anything is derived).
	var (
		rec peerChainRec
		pc  *senderkey.PeerChain
		pt  []byte
		ck  string
	)
	err = senderkey.ErrDecrypt
	for _, k := range cands {
		if ok, gerr := e.d.getJSON(k, &rec); gerr != nil || !ok {
			continue
		}
		if rec.Former && rec.Cutoff != nil && sm.Iteration >= *rec.Cutoff {
			continue // sent after its author's removal
		}
		if pc, err = senderkey.UnmarshalPeerChain(rec.State); err != nil {
			continue
		}
		if pt, err = pc.Decrypt(data, groupAD(mustHex(gs.meta.ID), secret)); err == nil || errors.Is(err, senderkey.ErrDuplicate) {
			ck = k
			break
		}
	}
	if errors.Is(err, senderkey.ErrDuplicate) {
		return nil, nil
	}
	if errors.Is(err, senderkey.ErrDecrypt) {
		// No chain held under this ID signs it: its own chain (another
		// member's under the same ID) may still be on its way.
		return hold()
	}
	if err == nil && rec.Former && rec.Cutoff == nil {
		// A former member's: whether it counts waits for the cutoff
		// that comes with the new secret.
		return hold()
	}
	if err != nil {
		return nil, err
	}
	if rec.State, err = pc.Marshal(); err != nil {
		return nil, err
	}
	if err := putJSON(b, ck, rec); err != nil {
		return nil, err
	}
	c, err := envelope.ParseContent(pt)
	if err != nil {
		return nil, err
	}
	return e.receiveGroupContentLocked(b, gs, rec.Member, rec.Former, c, owed)
}

// retryHeldLocked applies the held messages whose chains have come.
func (e *Engine) retryHeldLocked(gs *groupState) {
	keys, err := e.kv.List(groupHeldPre + gs.meta.ID + "/")
	if err != nil || len(keys) == 0 {
		return
	}
	e.mu.Lock()
	var b batch
	var events []Event
	owed := map[string][]string{}
	for _, k := range keys {
		var h heldMsg
		if ok, err := e.d.getJSON(k, &h); err != nil || !ok {
			continue
		}
		sm, err := senderkey.ParseMessage(h.Data)
		if err != nil || gs.ownChain(sm.ChainID) {
			e.kv.Delete(k)
			continue
		}
		if cands, _ := e.kv.List(chainKey(gs.meta.ID, sm.ChainID.String()) + "/"); len(cands) == 0 {
			if e.now().Sub(h.At) > e.cfg.MessageTTL {
				e.kv.Delete(k)
			}
			continue
		}
		hash, _ := hex.DecodeString(k[strings.LastIndexByte(k, '/')+1:])
		evs, err := e.receiveGroupMsgLocked(&b, gs, h.Secret, h.Data, [32]byte(hash), owed)
		if err != nil {
			e.log.Debug("held group message", "err", err)
		}
		events = append(events, evs...)
		b.Put(k, nil)
	}
	err = e.kv.PutMany(b.entries)
	if err == nil {
		for _, k := range keys {
			if v, ok, _ := e.kv.Get(k); ok && len(v) == 0 {
				e.kv.Delete(k)
			}
		}
	}
	e.mu.Unlock()
	if err != nil {
		e.log.Error("held group messages", "err", err)
		return
	}
	e.publishAll(events)
	for peer, ids := range owed {
		e.oweReceipts(peer, envelope.KindReceiptDelivered, ids)
	}
}

// receiveGroupContentLocked applies a content a member sent to the group.
// A former member's content counts only when its chain's cutoff let it
// through (former).
func (e *Engine) receiveGroupContentLocked(b *batch, gs *groupState, from string, former bool, c *envelope.Content, owed map[string][]string) ([]Event, error) {
	aid, err := identity.ParseAccountID(from)
	if err != nil {
		return nil, err
	}
	if gs.log.Role(aid) == 0 && !former {
		return nil, errors.New("a message from a former member")
	}
	if ct, _ := e.d.contact(from); ct != nil && ct.State == ContactBlocked {
		return nil, nil
	}
	gid := gs.meta.ID
	switch c.Kind {
	case envelope.KindText:
		if old, _ := e.d.message(idOf(c)); old != nil {
			return nil, nil
		}
		m := &Message{ID: idOf(c), Group: gid, From: from, To: groupPeer(gid), Text: string(c.Body),
			SentAt: time.UnixMilli(c.SentAt), ReceivedAt: e.now(), State: StateReceived, ReplyTo: replyOf(c)}
		if err := e.receiveFileLocked(b, c, m); err != nil {
			return nil, err
		}
		e.textTimerLocked(b, from, c, m)
		if err := e.applyPendingLocked(b, m); err != nil {
			return nil, err
		}
		if err := saveMessageTo(b, m); err != nil {
			return nil, err
		}
		if gs.meta.Status == GroupJoined {
			owed[groupPeer(gid)] = append(owed[groupPeer(gid)], m.ID)
		}
		return []Event{{Type: EventMessage, Message: m}}, nil
	case envelope.KindReaction, envelope.KindEdit, envelope.KindDelete:
		return e.receiveGroupOpLocked(b, gid, from, c)
	case envelope.KindReceiptDelivered, envelope.KindReceiptRead:
		return e.receiveGroupReceiptLocked(b, from, c)
	case envelope.KindTimer:
		return e.receiveGroupTimerLocked(b, gid, from, c)
	}
	return nil, nil
}

// receiveGroupOpLocked applies a reaction, edit or delete on a message of
// the group.
func (e *Engine) receiveGroupOpLocked(b *batch, gid, from string, c *envelope.Content) ([]Event, error) {
	refs := c.RefIDs()
	if len(refs) == 0 || (c.Kind != envelope.KindDelete && len(refs) != 1) {
		return nil, nil
	}
	var events []Event
	for _, ref := range refs {
		m, err := e.d.message(ref.String())
		if err != nil {
			return nil, err
		}
		if m == nil {
			if err := e.keepOpLocked(b, ref.String(), pendingOp{From: from, Group: gid, Kind: c.Kind, Body: c.Body, SentAt: c.SentAt, At: e.now()}); err != nil {
				return nil, err
			}
			continue
		}
		if m.Group != gid || !e.applyOp(m, from, c.Kind, c.Body, c.SentAt) {
			continue
		}
		if err := saveMessageTo(b, m); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: EventUpdate, Message: m})
	}
	return events, nil
}

// receiveGroupReceiptLocked counts a member's receipt for our messages.
// Receipts are idempotent, so they are written at once rather than with
// the batch: two in one batch for the same message then count both.
func (e *Engine) receiveGroupReceiptLocked(b *batch, from string, c *envelope.Content) ([]Event, error) {
	kind := "d"
	if c.Kind == envelope.KindReceiptRead {
		kind = "r"
	}
	var events []Event
	for _, ref := range c.RefIDs() {
		m, err := e.d.message(ref.String())
		if err != nil || m == nil || m.Group == "" || !m.Outgoing {
			continue
		}
		pre := groupRcptPrefix + m.ID + "/"
		if _, ok, _ := e.kv.Get(pre + kind + "/" + from); ok {
			continue
		}
		marks := []keystore.Entry{{Name: pre + kind + "/" + from}}
		if kind == "r" {
			marks = append(marks, keystore.Entry{Name: pre + "d/" + from}) // read implies delivered
		}
		if err := e.kv.PutMany(marks); err != nil {
			return nil, err
		}
		keys, err := e.kv.List(pre)
		if err != nil {
			return nil, err
		}
		m.DeliveredCount, m.ReadCount = 0, 0
		for _, k := range keys {
			switch {
			case strings.HasPrefix(k, pre+"d/"):
				m.DeliveredCount++
			case strings.HasPrefix(k, pre+"r/"):
				m.ReadCount++
			}
		}
		switch {
		case m.ReadCount > 0 && stateRank[m.State] < stateRank[StateRead]:
			m.State = StateRead
		case m.DeliveredCount > 0 && stateRank[m.State] < stateRank[StateDelivered]:
			m.State = StateDelivered
		}
		if err := e.d.saveMessage(m); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: EventState, Message: m})
	}
	return events, nil
}
