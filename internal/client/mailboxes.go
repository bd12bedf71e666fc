package client

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/ratchet"
	"github.com/umbra-im/umbra/internal/wire"
)

// Where an account receives (docs/privacy.md):
//
//   - One inbox per client, a new mailbox every epoch. Every contact writes
//     there, so what the client reads does not depend on how many
//     contacts it has. The inbox keys come from a random root per
//     generation (inboxGenEpochs epochs), made fresh on this device and
//     told to contacts only inside the ratchet (an inbox announcement in
//     Content.Inbox): someone who copied the device's state learns the
//     inboxes of the generations that existed then, and loses track once
//     the ratchet has healed and a newer generation is in use.
//   - Envelopes in the inbox are TypeInbox: HPKE-sealed to the
//     generation's X25519 key, with the session ID inside, so a node sees
//     neither sessions nor ratchet headers.
//   - First contact (and any contact that knows no current inbox of ours)
//     goes to a request bucket: a drop mailbox (wire.DropNamespace: anyone
//     may write with proof-of-work and read without a key, nobody can
//     delete) shared by every account that hashes to it in that epoch.
//     Each account reads its whole bucket and opens what is sealed to it,
//     so a node that sees a bucket read cannot tell which of the accounts
//     in it is online, and knowing an account ID tells it no more.
const (
	inboxGenEpochs = 7
	// maxPeerGens bounds what is kept of a peer's announcements.
	maxPeerGens = 3
	// DefaultRequestBuckets is how many request buckets an account's card
	// spreads first contacts over: the fewer, the more accounts share
	// one (more anonymity, more to read). It should grow with the network
	// (about one bucket per hundred accounts).
	DefaultRequestBuckets = 16
)

const (
	keyInboxRootPrefix = "inbox/root/"
	keyInboxFirst      = "inbox/first"
	peerInboxPrefix    = "peerinbox/"
	inboxToldPrefix    = "inboxtold/"
	peerCardPrefix     = "peercard/"
)

func hkdf32(secret []byte, info string, epoch uint64) []byte {
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], epoch)
	k, err := hkdf.Key(sha256.New, secret, nil, info+string(e[:]), 32)
	if err != nil {
		panic("client: hkdf of 32 bytes cannot fail: " + err.Error())
	}
	return k
}

func (e *Engine) epoch(t time.Time) uint64 { return ratchet.Epoch(t, e.cfg.EpochPeriod) }
func genOf(epoch uint64) uint64            { return epoch / inboxGenEpochs }

func inboxRootKey(gen uint64) string { return fmt.Sprintf("%s%020d", keyInboxRootPrefix, gen) }

// inboxRoot returns the root of generation gen, nil if this client never
// made it (nobody can have written to its inboxes).
func (e *Engine) inboxRoot(gen uint64) []byte {
	v, ok, err := e.kv.Get(inboxRootKey(gen))
	if err != nil || !ok || len(v) != 32 {
		return nil
	}
	return v
}

// ensureInboxRoots makes the roots of the current and the next generation
// (fresh randomness each) and records the first epoch this client read
// from; it writes only what is missing.
func (e *Engine) ensureInboxRoots() error {
	ep := e.epoch(e.now())
	var b batch
	for _, g := range []uint64{genOf(ep), genOf(ep) + 1} {
		if e.inboxRoot(g) != nil {
			continue
		}
		root := make([]byte, 32)
		rand.Read(root)
		b.Put(inboxRootKey(g), root)
	}
	if _, ok, err := e.kv.Get(keyInboxFirst); err != nil {
		return err
	} else if !ok {
		b.Put(keyInboxFirst, binary.BigEndian.AppendUint64(nil, ep))
	}
	if len(b.entries) == 0 {
		return nil
	}
	return e.kv.PutMany(b.entries)
}

// pruneInboxRoots drops the roots of generations whose last epoch is
// older than a message lives: no message can still be in their inboxes.
func (e *Engine) pruneInboxRoots() error {
	keep := e.epoch(e.now().Add(-e.cfg.MessageTTL - e.cfg.EpochPeriod))
	keys, err := e.kv.List(keyInboxRootPrefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		var g uint64
		if _, err := fmt.Sscanf(k[len(keyInboxRootPrefix):], "%d", &g); err != nil {
			continue
		}
		if (g+1)*inboxGenEpochs <= keep {
			if err := e.kv.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// firstEpoch is the first epoch this client had inboxes for.
func (e *Engine) firstEpoch() uint64 {
	v, ok, err := e.kv.Get(keyInboxFirst)
	if err != nil || !ok || len(v) != 8 {
		return e.epoch(e.now())
	}
	return binary.BigEndian.Uint64(v)
}

// inboxKey is the mailbox key of this client's inbox in epoch, nil if its
// generation was never made.
func (e *Engine) inboxKey(epoch uint64) *mailbox.Key {
	root := e.inboxRoot(genOf(epoch))
	if root == nil {
		return nil
	}
	k, _ := mailbox.KeyFromSeed(hkdf32(root, "Umbra_Inbox_Mailbox_v1", epoch))
	return k
}

// inboxHPKE is the X25519 key inbox envelopes of generation gen are
// sealed to.
func (e *Engine) inboxHPKE(gen uint64) *ecdh.PrivateKey {
	root := e.inboxRoot(gen)
	if root == nil {
		return nil
	}
	k, err := ecdh.X25519().NewPrivateKey(hkdf32(root, "Umbra_Inbox_HPKE_v1", gen))
	if err != nil {
		return nil
	}
	return k
}

// requestBox is this account's request bucket in epoch.
func (e *Engine) requestBox(epoch uint64) mailbox.ID {
	return RequestBucket(e.acct.ID(), epoch, e.cfg.RequestBuckets)
}

// RequestBucket is the request bucket of account aid in epoch, out of
// buckets: anyone who knows the account ID (and its card's bucket count)
// computes it, and so do the other accounts that share it.
func RequestBucket(aid identity.AccountID, epoch uint64, buckets uint32) mailbox.ID {
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], epoch)
	h := sha256.Sum256(append(append([]byte("Umbra_Bucket_Of_v1"), aid[:]...), e[:]...))
	return mailbox.BucketID(epoch, binary.BigEndian.Uint32(h[:4])%max(buckets, 1))
}

// cardKey is the key of the mailbox whose public namespace holds this
// account's card: the account key, so strangers find it from the ID.
func (e *Engine) cardKey() *mailbox.Key {
	k, _ := mailbox.KeyFromSeed(e.acct.SigningKey().Seed())
	return k
}

// cardMailbox is where aid's card is published.
func cardMailbox(aid identity.AccountID) mailbox.ID {
	var id mailbox.ID
	copy(id[:], aid.PublicKey())
	return id
}

// inboxAnnouncement tells a contact where this client reads: the inboxes
// of whole generations, each with the key to seal to.
type inboxAnnouncement struct {
	PeriodSec uint64     `cbor:"1,keyasint" json:"period"`
	Gens      []inboxGen `cbor:"2,keyasint" json:"gens"`
}

type inboxGen struct {
	Gen   uint64   `cbor:"1,keyasint" json:"gen"`
	HPKE  []byte   `cbor:"2,keyasint" json:"hpke"`
	Boxes [][]byte `cbor:"3,keyasint" json:"boxes"` // inbox IDs of epochs Gen*inboxGenEpochs + i
}

// announcedGen is the newest generation an announcement made now covers:
// a contact told of it needs no announcement yet.
func (e *Engine) announcedGen() uint64 { return genOf(e.epoch(e.now())) + 1 }

// announcement encodes the current and the next generation's inboxes.
func (e *Engine) announcement() ([]byte, uint64, error) {
	gen := genOf(e.epoch(e.now()))
	a := inboxAnnouncement{PeriodSec: uint64(e.cfg.EpochPeriod / time.Second)}
	for _, g := range []uint64{gen, gen + 1} {
		priv := e.inboxHPKE(g)
		if priv == nil {
			return nil, 0, fmt.Errorf("inbox generation %d has no root", g)
		}
		ig := inboxGen{Gen: g, HPKE: priv.PublicKey().Bytes()}
		for i := range uint64(inboxGenEpochs) {
			id := e.inboxKey(g*inboxGenEpochs + i).ID()
			ig.Boxes = append(ig.Boxes, id[:])
		}
		a.Gens = append(a.Gens, ig)
	}
	b, err := wire.Marshal(a)
	return b, gen + 1, err
}

// parseAnnouncement decodes and bounds a peer's announcement.
func parseAnnouncement(b []byte) (*inboxAnnouncement, error) {
	var a inboxAnnouncement
	if err := wire.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	if a.PeriodSec == 0 || len(a.Gens) == 0 || len(a.Gens) > maxPeerGens {
		return nil, fmt.Errorf("inbox announcement: period %d, %d generations", a.PeriodSec, len(a.Gens))
	}
	for _, g := range a.Gens {
		if len(g.HPKE) != 32 || len(g.Boxes) != inboxGenEpochs {
			return nil, fmt.Errorf("inbox announcement: malformed generation")
		}
		for _, id := range g.Boxes {
			if len(id) != 32 {
				return nil, fmt.Errorf("inbox announcement: malformed inbox ID")
			}
		}
	}
	return &a, nil
}

// mergeAnnouncementTo records peer's announcement in w: its generations
// replace what was known of the same generations, and the newest few are
// kept.
func (e *Engine) mergeAnnouncementTo(w kvWriter, peer string, a *inboxAnnouncement) error {
	var known inboxAnnouncement
	if _, err := e.d.getJSON(peerInboxPrefix+peer, &known); err != nil {
		return err
	}
	if known.PeriodSec != a.PeriodSec {
		known = inboxAnnouncement{PeriodSec: a.PeriodSec}
	}
	for _, g := range a.Gens {
		known.Gens = slices.DeleteFunc(known.Gens, func(k inboxGen) bool { return k.Gen == g.Gen })
		known.Gens = append(known.Gens, g)
	}
	slices.SortFunc(known.Gens, func(x, y inboxGen) int { return int(int64(y.Gen) - int64(x.Gen)) })
	if len(known.Gens) > maxPeerGens {
		known.Gens = known.Gens[:maxPeerGens]
	}
	return putJSON(w, peerInboxPrefix+peer, known)
}

// peerInbox is where peer reads at time t: its inbox ID and the key to
// seal to; false if no announcement of peer covers t.
func (e *Engine) peerInbox(peer string, t time.Time) (mailbox.ID, []byte, bool) {
	var a inboxAnnouncement
	if ok, err := e.d.getJSON(peerInboxPrefix+peer, &a); err != nil || !ok || a.PeriodSec == 0 {
		return mailbox.ID{}, nil, false
	}
	ep := ratchet.Epoch(t, time.Duration(a.PeriodSec)*time.Second)
	for _, g := range a.Gens {
		if genOf(ep) == g.Gen {
			var id mailbox.ID
			copy(id[:], g.Boxes[ep-g.Gen*inboxGenEpochs])
			return id, g.HPKE, true
		}
	}
	return mailbox.ID{}, nil, false
}

// toldGen is the newest generation of our inboxes peer has been told of.
func (e *Engine) toldGen(peer string) uint64 {
	v, ok, err := e.kv.Get(inboxToldPrefix + peer)
	if err != nil || !ok || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// cardLocked is this account's card as of now.
func (e *Engine) cardLocked() (*envelope.Card, error) {
	bundle, err := e.prekeys.Bundle(e.acct)
	if err != nil {
		return nil, err
	}
	bb, err := bundle.Encode()
	if err != nil {
		return nil, err
	}
	return &envelope.Card{Bundle: bb, PeriodSec: uint64(e.cfg.EpochPeriod / time.Second), Buckets: e.cfg.RequestBuckets}, nil
}
