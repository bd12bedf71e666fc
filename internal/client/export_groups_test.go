package client

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/group/senderkey"
)

// GroupChainsForTest maps the chain IDs this engine holds for group gid to
// the members they are attributed to.
func (e *Engine) GroupChainsForTest(gid string) map[string][]string {
	keys, _ := e.kv.List(groupChainPre + gid + "/")
	out := map[string][]string{}
	for _, k := range keys {
		var rec peerChainRec
		if ok, _ := e.d.getJSON(k, &rec); ok {
			chain, _, _ := strings.Cut(k[len(groupChainPre+gid+"/"):], "/")
			out[chain] = append(out[chain], rec.Member)
		}
	}
	return out
}

// ForgeChainForTest is a hostile member's attempt to speak for another: it
// makes a chain whose ID is chainID (another member's), hands it out signed
// by this account (claiming, when claim is set, to be that account) and
// sends text with it into the group's current mailbox.
func (e *Engine) ForgeChainForTest(gid, chainID string, claim []byte, text string) error {
	id, err := hex.DecodeString(chainID)
	if err != nil {
		return err
	}
	own, dist, err := senderkey.NewSenderChain(io.MultiReader(bytes.NewReader(id), rand.Reader))
	if err != nil {
		return err
	}
	db, err := dist.Encode()
	if err != nil {
		return err
	}
	e.gmu.Lock()
	defer e.gmu.Unlock()
	gs, err := e.memberGroupLocked(gid)
	if err != nil {
		return err
	}
	secret, _ := gs.currentSecret()
	rec := signedDist(e.acct, mustHex(gid), mustHex(gs.meta.Boxes[0].Op), db)
	if claim != nil {
		rec.Author = claim // the signature stays this account's
	}
	c, err := envelope.NewContent(nil, envelope.KindText, []byte(text), e.now())
	if err != nil {
		return err
	}
	pt, _ := c.Encode()
	ct, err := own.Encrypt(pt, groupAD(mustHex(gid), secret))
	if err != nil {
		return err
	}
	var b batch
	if err := e.postLocked(&b, gid, secret, rec, ""); err != nil {
		return err
	}
	if err := e.postLocked(&b, gid, secret, groupRecord{Kind: recMsg, Data: ct}, ""); err != nil {
		return err
	}
	return e.commitGroupLocked(&b, gs)
}

// AccountKeyForTest is the account's public key.
func (e *Engine) AccountKeyForTest() []byte { return e.acct.Public().SigningKey }
