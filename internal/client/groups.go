package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/group/membership"
	"github.com/umbra-im/umbra/internal/group/senderkey"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/wire"
)

// Groups (docs/groups-engine.md). The membership log
// (internal/group/membership) decides who is in a group and which epoch
// secret is in force; every member sends with its own sender-key chain
// (internal/group/senderkey), made afresh for every epoch secret and
// handed out in the group's mailbox signed by the member's account key.
// A group message is one encryption and one write to the group's mailbox,
// whatever the group's size.

// Group statuses, as this account sees a group.
const (
	GroupInvited  = "invited"  // someone who is not a contact added us: accept or decline
	GroupJoined   = "member"   // we take part
	GroupLeft     = "left"     // we left
	GroupRemoved  = "removed"  // an admin removed us
	GroupDeclined = "declined" // we declined the invitation
)

// KindGroupLine is the Kind of a group's system line (a member added,
// removed, promoted; the group renamed; someone left).
const KindGroupLine = "group"

// EventGroup: a group changed (Group is set).
const EventGroup = "group"

const (
	groupPrefix     = "group/"
	groupChainPre   = "gchain/"
	groupHeldPre    = "gheld/"
	groupInPrefix   = "groupin/"
	groupOutPrefix  = "groupq/"
	groupOutDonePre = "groupqd/" // groupqd/ID: how many of groupq/ID's recipients are queued
	groupRcptPrefix = "grcpt/"
	groupPeerPrefix = "group:"
	// groupPeriod is the time epoch of group mailboxes: the same for
	// every member whatever its own inbox period.
	groupPeriod = 24 * time.Hour
	// groupBoxGrace is how long the mailbox of a replaced epoch secret is
	// still read, for what members sent before they learned of the change.
	groupBoxGrace = 48 * time.Hour
	// Bounds on what one group makes this client keep.
	maxGroupBoxes      = 4
	maxChainsPerMember = 4
	maxHeldPerGroup    = 256
	maxPendingOpsKept  = 256
	maxPendingSecrets  = 16
	maxGroups          = 500
)

// Group is a group as the user sees it.
type Group struct {
	ID          string        `json:"id"` // 64 hex characters
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Status      string        `json:"status"`
	Role        string        `json:"role,omitempty"` // ours: "admin" or "member"
	Members     []GroupMember `json:"members"`
	InvitedBy   string        `json:"invited_by,omitempty"`
	Epoch       uint64        `json:"epoch"`
	HasAvatar   bool          `json:"has_avatar,omitempty"`
	// Timer is the group's disappearing-message timer in seconds (0: off).
	Timer  uint32    `json:"timer,omitempty"`
	Since  time.Time `json:"since"`
	Unread int       `json:"unread"`
}

// GroupMember is one member of a group.
type GroupMember struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"` // the contact's name, if a contact
	Role string `json:"role"`           // "admin" or "member"
	You  bool   `json:"you,omitempty"`
}

// groupMeta is what the engine keeps of a group besides its log.
type groupMeta struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	InvitedBy string    `json:"invited_by,omitempty"`
	Since     time.Time `json:"since"`
	// Secrets are the epoch secrets held, by the hex hash of the op that
	// set them (the log does not keep them: Log.Marshal leaves them out).
	Secrets map[string][]byte `json:"secrets"`
	// PendingSecrets came for ops not in the log yet; each is checked
	// against its op's commitment once the op is in.
	PendingSecrets map[string][]byte `json:"pending_secrets,omitempty"`
	// Pending are ops whose heads have not arrived.
	Pending [][]byte `json:"pending,omitempty"`
	// Boxes are the epoch secrets whose mailboxes are read, newest first.
	Boxes []groupBox `json:"boxes"`
	// OwnOp is the op whose secret our current chain belongs to.
	OwnOp string `json:"own_op,omitempty"`
	// OwnChains are the IDs of our chains, newest first (a few): what
	// we read back from the group's mailbox under them is our own.
	OwnChains []string `json:"own_chains,omitempty"`
}

// ownChain reports whether id is one of our chains in the group.
func (gs *groupState) ownChain(id senderkey.ChainID) bool {
	return (gs.own != nil && gs.own.ChainID() == id) || slices.Contains(gs.meta.OwnChains, id.String())
}

type groupBox struct {
	Op     string    `json:"op"`
	Secret []byte    `json:"secret"`
	Until  time.Time `json:"until,omitzero"` // zero: in force
}

// groupState is a loaded group.
type groupState struct {
	log  *membership.Log
	meta groupMeta
	own  *senderkey.OwnChain
}

// peerChainRec is a member's chain, under gchain/GROUP/CHAIN.
type peerChainRec struct {
	Member string    `json:"member"`
	Op     string    `json:"op"`
	State  []byte    `json:"state"`
	At     time.Time `json:"at"`
	// Former: the member was removed or left. Its texts still count up
	// to Cutoff, the iteration its remover had reached (sent to every
	// member with the new secret), so that every member shows the same
	// texts of it: those sent before the removal, however late they
	// arrive. The chain is forgotten at Until.
	Former bool      `json:"former,omitempty"`
	Cutoff *uint32   `json:"cutoff,omitempty"`
	Until  time.Time `json:"until,omitzero"`
}

func groupPeer(gid string) string       { return groupPeerPrefix + gid }
func groupKey(gid, what string) string  { return groupPrefix + gid + "/" + what }
func chainKey(gid, chain string) string { return groupChainPre + gid + "/" + chain }
func hexOf(h [32]byte) string           { return hex.EncodeToString(h[:]) }

// groupTE is the time epoch of group mailboxes at t.
func groupTE(t time.Time) uint64 { return ratchet.Epoch(t, groupPeriod) }

// groupAD is the associated data of a group's sender-key messages: the
// group ID and the epoch key of the secret whose mailbox carries them.
func groupAD(gid []byte, secret []byte) []byte {
	k := membership.EpochKey(secret)
	return append(slices.Clone(gid), k[:]...)
}

// boxKey is the mailbox key and the envelope key of secret's mailbox in
// time epoch te.
func boxKey(secret []byte, te uint64) (*mailbox.Key, [32]byte) {
	seed := membership.MailboxSeed(secret, te)
	k, err := mailbox.KeyFromSeed(seed[:])
	if err != nil {
		panic("client: a 32-byte seed is a mailbox key: " + err.Error())
	}
	return k, membership.MailboxKey(secret, te)
}

// parseGroupID checks a group ID (64 hex characters).
func parseGroupID(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(s, groupPeerPrefix)))
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return "", fmt.Errorf("group ID %q: want 64 hex characters", s)
	}
	return s, nil
}

// ErrNoGroup is returned for a group this account does not know.
var ErrNoGroup = errors.New("no such group")

// loadGroupLocked returns a group (nil if unknown), from the cache or the
// database. Caller holds e.gmu.
func (e *Engine) loadGroupLocked(gid string) (*groupState, error) {
	if gs, ok := e.groups[gid]; ok {
		return gs, nil
	}
	var meta groupMeta
	if ok, err := e.d.getJSON(groupKey(gid, "meta"), &meta); err != nil || !ok {
		return nil, err
	}
	lb, ok, err := e.kv.Get(groupKey(gid, "log"))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("group %s: log missing", short(gid))
	}
	l, err := membership.Unmarshal(lb)
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", short(gid), err)
	}
	gs := &groupState{log: l, meta: meta}
	for _, p := range meta.Pending {
		if op, err := membership.ParseOp(p); err == nil {
			l.Apply(op)
		}
	}
	gs.receiveSecrets()
	if ob, ok, err := e.kv.Get(groupKey(gid, "own")); err != nil {
		return nil, err
	} else if ok && len(ob) > 0 {
		if gs.own, err = senderkey.UnmarshalOwnChain(ob); err != nil {
			return nil, fmt.Errorf("group %s: own chain: %w", short(gid), err)
		}
	}
	if e.groups == nil {
		e.groups = map[string]*groupState{}
	}
	e.groups[gid] = gs
	return gs, nil
}

// receiveSecrets hands the log every secret held, and checks the pending
// ones whose ops have arrived.
func (gs *groupState) receiveSecrets() {
	for op, s := range gs.meta.Secrets {
		if h, err := hex.DecodeString(op); err == nil && len(h) == 32 {
			gs.log.ReceiveSecret([32]byte(h), s)
		}
	}
	for op, s := range gs.meta.PendingSecrets {
		h, err := hex.DecodeString(op)
		if err != nil || len(h) != 32 {
			delete(gs.meta.PendingSecrets, op)
			continue
		}
		if _, ok := gs.log.Op([32]byte(h)); !ok {
			continue
		}
		if gs.log.ReceiveSecret([32]byte(h), s) == nil {
			gs.meta.Secrets[op] = s
		}
		delete(gs.meta.PendingSecrets, op)
	}
}

// saveGroupTo writes a group's meta, log and own chain to b.
func (e *Engine) saveGroupTo(b *batch, gs *groupState) error {
	lb, err := gs.log.Marshal()
	if err != nil {
		return err
	}
	b.Put(groupKey(gs.meta.ID, "log"), lb)
	if gs.own != nil {
		ob, err := gs.own.Marshal()
		if err != nil {
			return err
		}
		b.Put(groupKey(gs.meta.ID, "own"), ob)
	} else {
		b.Put(groupKey(gs.meta.ID, "own"), nil)
	}
	return putJSON(b, groupKey(gs.meta.ID, "meta"), gs.meta)
}

// saveOwnTo writes our chain alone to b: all that a send changes. (The
// log of a large group is tens of KiB: saveGroupTo on every message wrote
// it again each time.)
func (e *Engine) saveOwnTo(b *batch, gs *groupState) error {
	if gs.own == nil {
		return errors.New("no chain to save")
	}
	ob, err := gs.own.Marshal()
	if err != nil {
		return err
	}
	b.Put(groupKey(gs.meta.ID, "own"), ob)
	return nil
}

// commitGroup writes b and, on failure, drops the cached group so that the
// next use reloads what is on disk.
func (e *Engine) commitGroupLocked(b *batch, gs *groupState) error {
	if err := e.kv.PutMany(b.entries); err != nil {
		delete(e.groups, gs.meta.ID)
		return err
	}
	e.kickOutbox()
	return nil
}

func (e *Engine) kickOutbox() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Engine) kickGroups() {
	select {
	case e.gkick <- struct{}{}:
	default:
	}
}

// postLocked seals rec into the mailbox of secret (this time epoch) and
// puts it in the outbox under key (a message ID for a chat message, so its
// state follows the send), in b.
func (e *Engine) postLocked(b *batch, gid string, secret []byte, rec groupRecord, msgID string) error {
	rb, err := wire.Marshal(rec)
	if err != nil {
		return err
	}
	now := e.now()
	k, ek := boxKey(secret, groupTE(now))
	box := k.ID()
	data, err := envelope.SealGroup(ek[:], box[:], rb)
	if err != nil {
		return err
	}
	item := &outboxItem{MsgID: msgID, To: groupPeer(gid), Mailbox: box[:], Created: now,
		Timestamp: wire.CoarseTime(now.UnixMilli()), TTL: wire.CoarseTTL(e.cfg.MessageTTL.Milliseconds()), Data: data}
	key := msgID
	if key == "" {
		key = "r-" + newMessageID()
	}
	return putJSON(b, outboxKey(key), item)
}

// currentSecret is the secret whose mailbox we write to.
func (gs *groupState) currentSecret() ([]byte, bool) {
	if len(gs.meta.Boxes) == 0 || !gs.meta.Boxes[0].Until.IsZero() {
		return nil, false
	}
	return gs.meta.Boxes[0].Secret, true
}

// refreshLocked brings what the engine keeps in line with the log after a
// change: our status, the mailboxes to read, our chain (a new one, handed
// out, for every new epoch secret) and the chains of former members. It
// writes to b and returns the events to publish and whether this client
// is the admin who must rekey now.
func (e *Engine) refreshLocked(b *batch, gs *groupState) (events []Event, rekey bool, err error) {
	gs.receiveSecrets()
	st := gs.log.State()
	me := e.acct.ID()
	role, in := st.Members[me]
	switch {
	case !in && (gs.meta.Status == GroupJoined || gs.meta.Status == GroupInvited):
		gs.meta.Status = GroupRemoved
		gs.own = nil
		gs.meta.OwnOp = ""
	case in && (gs.meta.Status == GroupRemoved || gs.meta.Status == GroupLeft || gs.meta.Status == GroupDeclined):
		gs.meta.Status = GroupInvited // added again
	}
	now := e.now()
	if _, secret, ok := gs.log.Secret(); ok && in {
		op := hexOf(st.SecretOp)
		gs.meta.Secrets[op] = secret[:]
		if len(gs.meta.Boxes) == 0 || gs.meta.Boxes[0].Op != op {
			if len(gs.meta.Boxes) > 0 && gs.meta.Boxes[0].Until.IsZero() {
				gs.meta.Boxes[0].Until = now.Add(groupBoxGrace)
			}
			gs.meta.Boxes = append([]groupBox{{Op: op, Secret: secret[:]}}, gs.meta.Boxes...)
			e.gfastUntil = now.Add(groupFastFor) // read the replaced mailbox often for a while
		}
	}
	if !in && len(gs.meta.Boxes) > 0 && gs.meta.Boxes[0].Until.IsZero() {
		gs.meta.Boxes[0].Until = now // nothing more to read once out
	}
	gs.meta.Boxes = slices.DeleteFunc(gs.meta.Boxes, func(x groupBox) bool { return !x.Until.IsZero() && now.After(x.Until) })
	if len(gs.meta.Boxes) > maxGroupBoxes {
		gs.meta.Boxes = gs.meta.Boxes[:maxGroupBoxes]
	}
	if secret, ok := gs.currentSecret(); ok && gs.meta.Status == GroupJoined && gs.meta.OwnOp != gs.meta.Boxes[0].Op {
		own, dist, err := senderkey.NewSenderChain(nil)
		if err != nil {
			return nil, false, err
		}
		db, err := dist.Encode()
		dist.Wipe()
		if err != nil {
			return nil, false, err
		}
		gid, _ := hex.DecodeString(gs.meta.ID)
		opb, _ := hex.DecodeString(gs.meta.Boxes[0].Op)
		if err := e.postLocked(b, gs.meta.ID, secret, signedDist(e.acct, gid, opb, db), ""); err != nil {
			return nil, false, err
		}
		gs.own, gs.meta.OwnOp = own, gs.meta.Boxes[0].Op
		gs.meta.OwnChains = append([]string{own.ChainID().String()}, gs.meta.OwnChains...)
		if len(gs.meta.OwnChains) > maxChainsPerMember {
			gs.meta.OwnChains = gs.meta.OwnChains[:maxChainsPerMember]
		}
	}
	if err := e.dropFormerChains(gs, st, now); err != nil {
		return nil, false, err
	}
	if err := e.saveGroupTo(b, gs); err != nil {
		return nil, false, err
	}
	if g, err := e.groupView(gs); err == nil {
		events = append(events, Event{Type: EventGroup, Group: g})
	}
	admins := st.Admins()
	rekey = st.RekeyNeeded && gs.meta.Status == GroupJoined && role == membership.RoleAdmin &&
		len(admins) > 0 && admins[0] == me
	return events, rekey, nil
}

// dropFormerChains marks the chains of those who are no longer members
// (see peerChainRec.Former) and forgets them once their time is up. It
// goes by the index of chains by member (gchain/m/GROUP/MEMBER/…), whose
// names say whose each chain is, so a change costs no read of every
// member's chain.
func (e *Engine) dropFormerChains(gs *groupState, st membership.State, now time.Time) error {
	idx := groupChainPre + "m/" + gs.meta.ID + "/"
	keys, err := e.kv.List(idx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		member, _, _ := strings.Cut(strings.TrimPrefix(k, idx), "/")
		aid, err := identity.ParseAccountID(member)
		if _, in := st.Members[aid]; err == nil && in {
			continue
		}
		ck := chainKey(gs.meta.ID, k[strings.LastIndexByte(k, '/')+1:]) + "/" + member
		var rec peerChainRec
		ok, err := e.d.getJSON(ck, &rec)
		if err != nil {
			return err
		}
		switch {
		case !ok || rec.Former && now.After(rec.Until):
			if err := e.kv.Delete(ck); err != nil {
				return err
			}
			if err := e.kv.Delete(k); err != nil {
				return err
			}
		case !rec.Former:
			rec.Former, rec.Until = true, now.Add(groupBoxGrace)
			if err := e.d.putJSON(ck, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// chainCutoffs is, for each chain of the members, the iteration this
// client has reached: what a remover sends with the new secret.
func (e *Engine) chainCutoffs(gid string, members []identity.AccountID) []chainCutoff {
	var out []chainCutoff
	for _, m := range members {
		idx := groupChainPre + "m/" + gid + "/" + m.String() + "/"
		keys, _ := e.kv.List(idx)
		for _, k := range keys {
			var rec peerChainRec
			if ok, _ := e.d.getJSON(chainKey(gid, k[strings.LastIndexByte(k, '/')+1:])+"/"+m.String(), &rec); !ok {
				continue
			}
			pc, err := senderkey.UnmarshalPeerChain(rec.State)
			if err != nil {
				continue
			}
			id := pc.ChainID()
			out = append(out, chainCutoff{Member: bytes.Clone(m[:]), Chain: id[:], Iter: pc.Iteration()})
		}
	}
	return out
}

// applyCutoffs sets the cutoffs of former members' chains.
func (e *Engine) applyCutoffs(gid string, cuts []chainCutoff) {
	for _, c := range cuts {
		k := chainKey(gid, hex.EncodeToString(c.Chain)) + "/" + identity.AccountID(c.Member).String()
		var rec peerChainRec
		if ok, _ := e.d.getJSON(k, &rec); !ok || rec.Cutoff != nil {
			continue
		}
		it := c.Iter
		rec.Cutoff = &it
		if !rec.Former {
			rec.Former, rec.Until = true, e.now().Add(groupBoxGrace)
		}
		if err := e.d.putJSON(k, rec); err != nil {
			e.log.Warn("group chain cutoff", "err", err)
		}
	}
}

// groupView is the user's view of a group.
func (e *Engine) groupView(gs *groupState) (*Group, error) {
	st := gs.log.State()
	g := &Group{ID: gs.meta.ID, Name: st.Info.Name, Description: st.Info.Description, Status: gs.meta.Status,
		InvitedBy: gs.meta.InvitedBy, Epoch: st.Epoch, Since: gs.meta.Since, HasAvatar: len(st.Info.Avatar) > 0,
		Timer: e.timerOf(groupPeer(gs.meta.ID))}
	me := e.acct.ID()
	for id, r := range st.Members {
		m := GroupMember{ID: id.String(), Role: r.String(), You: id == me}
		if c, _ := e.d.contact(m.ID); c != nil && c.State == ContactAccepted {
			m.Name = c.Name
		}
		if m.You {
			g.Role = m.Role
		}
		g.Members = append(g.Members, m)
	}
	slices.SortFunc(g.Members, func(a, b GroupMember) int {
		if a.Role != b.Role {
			return strings.Compare(a.Role, b.Role) // admins first
		}
		return strings.Compare(a.ID, b.ID)
	})
	if keys, err := e.kv.List(unreadPrefix(groupPeer(gs.meta.ID))); err == nil {
		for _, k := range keys {
			var m Message
			if ok, _ := e.d.getJSON(k, &m); ok && m.State == StateReceived && m.Kind == "" {
				g.Unread++
			}
		}
	}
	return g, nil
}

// nameOf is how a system line names an account.
func (e *Engine) nameOf(id identity.AccountID) string {
	if id == e.acct.ID() {
		return "you"
	}
	s := id.String()
	if c, _ := e.d.contact(s); c != nil && c.Name != "" {
		return c.Name
	}
	return short(s)
}

// describeOp is the system line of an applied op ("" for none).
func (e *Engine) describeOp(op *membership.Op, st membership.State) string {
	who := e.nameOf(op.AuthorID())
	var names []string
	for _, m := range op.Members {
		if len(m) == len(identity.AccountID{}) {
			names = append(names, e.nameOf(identity.AccountID(m)))
		}
	}
	list := strings.Join(names, ", ")
	switch op.Kind {
	case membership.OpCreate:
		return fmt.Sprintf("%s created the group %q", who, st.Info.Name)
	case membership.OpAdd:
		return fmt.Sprintf("%s added %s", who, list)
	case membership.OpRemove:
		return fmt.Sprintf("%s removed %s", who, list)
	case membership.OpPromote:
		return fmt.Sprintf("%s made %s admin", who, list)
	case membership.OpDemote:
		return fmt.Sprintf("%s removed %s as admin", who, list)
	case membership.OpSetInfo:
		if op.Info != nil {
			return fmt.Sprintf("%s changed the group's name to %q", who, op.Info.Name)
		}
	case membership.OpLeave:
		return fmt.Sprintf("%s left", who)
	}
	return ""
}

// lineLocked writes the system line of op (applied, not rejected) to b,
// once: its ID is derived from the op's hash.
func (e *Engine) lineLocked(b *batch, gs *groupState, op *membership.Op) []Event {
	if known, rej := gs.log.Status(op.Hash()); !known || rej != nil {
		return nil
	}
	h := op.Hash()
	id := hex.EncodeToString(h[:16])
	if old, _ := e.d.message(id); old != nil {
		return nil
	}
	text := e.describeOp(op, gs.log.State())
	if text == "" {
		return nil
	}
	at := time.UnixMilli(e.clock().UnixMilli())
	m := &Message{ID: id, Group: gs.meta.ID, From: op.AuthorID().String(), To: groupPeer(gs.meta.ID), Text: text,
		SentAt: at, ReceivedAt: at, State: StateRead, Kind: KindGroupLine, Outgoing: op.AuthorID() == e.acct.ID()}
	if err := saveMessageTo(b, m); err != nil {
		return nil
	}
	return []Event{{Type: EventMessage, Message: m}}
}

// applyOpLocked applies an op from the network to the log; it reports
// whether the log changed, and writes the op's system line.
func (e *Engine) applyGroupOpLocked(b *batch, gs *groupState, raw []byte) (bool, []Event, error) {
	op, err := membership.ParseOp(raw)
	if err != nil {
		return false, nil, err
	}
	if op.Kind == membership.OpCreate {
		if hexOf(op.Hash()) != gs.meta.ID {
			return false, nil, errors.New("the genesis of another group")
		}
		return false, nil, nil // every log starts with it
	}
	if !bytes.Equal(op.Group, mustHex(gs.meta.ID)) {
		return false, nil, errors.New("an op of another group")
	}
	changed, err := gs.log.Apply(op)
	if err != nil {
		return false, nil, err
	}
	if known, _ := gs.log.Status(op.Hash()); !known {
		if len(gs.meta.Pending) < maxPendingOpsKept {
			gs.meta.Pending = append(gs.meta.Pending, raw)
		}
		return false, nil, nil
	}
	if changed && len(gs.meta.Pending) > 0 {
		gs.meta.Pending = slices.DeleteFunc(gs.meta.Pending, func(p []byte) bool {
			o, err := membership.ParseOp(p)
			if err != nil {
				return true
			}
			known, _ := gs.log.Status(o.Hash())
			return known
		})
	}
	if !changed {
		return false, nil, nil
	}
	return true, e.lineLocked(b, gs, op), nil
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

// FindGroup returns the group whose ID is ref or starts with ref (at
// least 8 hex characters), or whose name is ref (when only one has it).
func (e *Engine) FindGroup(ref string) (g *Group, err error) {
	err = e.withGroup(ref, func(gs *groupState) error {
		g, err = e.groupView(gs)
		return err
	})
	return g, err
}

// withGroup runs f on group ref (ID, prefix or name) under the group lock.
func (e *Engine) withGroup(ref string, f func(gs *groupState) error) error {
	gid, err := e.resolveGroup(ref) // takes the lock itself
	if err != nil {
		return err
	}
	e.gmu.Lock()
	defer e.gmu.Unlock()
	gs, err := e.loadGroupLocked(gid)
	if err != nil {
		return err
	}
	if gs == nil {
		return ErrNoGroup
	}
	return f(gs)
}

func (e *Engine) resolveGroup(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if gid, err := parseGroupID(ref); err == nil {
		return gid, nil
	}
	groups, err := e.Groups()
	if err != nil {
		return "", err
	}
	var found []string
	low := strings.ToLower(strings.TrimPrefix(ref, groupPeerPrefix))
	for _, g := range groups {
		if len(low) >= 8 && strings.HasPrefix(g.ID, low) || strings.EqualFold(g.Name, ref) {
			found = append(found, g.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w %q", ErrNoGroup, ref)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%q names %d groups: use the group ID", ref, len(found))
}

// Groups lists the groups this account knows, newest first.
func (e *Engine) Groups() ([]Group, error) {
	keys, err := e.kv.List(groupPrefix)
	if err != nil {
		return nil, err
	}
	e.gmu.Lock()
	defer e.gmu.Unlock()
	var out []Group
	for _, k := range keys {
		gid, ok := strings.CutSuffix(strings.TrimPrefix(k, groupPrefix), "/meta")
		if !ok {
			continue
		}
		gs, err := e.loadGroupLocked(gid)
		if err != nil || gs == nil {
			e.log.Warn("group", "id", short(gid), "err", err)
			continue
		}
		if g, err := e.groupView(gs); err == nil {
			out = append(out, *g)
		}
	}
	slices.SortFunc(out, func(a, b Group) int { return b.Since.Compare(a.Since) })
	return out, nil
}

// GroupMessages lists a group's conversation, system lines included.
func (e *Engine) GroupMessages(ref string) ([]Message, error) {
	gid, err := e.resolveGroup(ref)
	if err != nil {
		return nil, err
	}
	e.expireDue()
	return e.d.messages(groupPeer(gid))
}

// decodeJSON is json.Unmarshal for stored records.
func decodeJSON(b []byte, v any) error { return json.Unmarshal(b, v) }

// groupCtx bounds a background group step.
func groupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 2*time.Minute)
}
