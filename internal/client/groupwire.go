package client

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/umbra-im/umbra/internal/group/membership"
	"github.com/umbra-im/umbra/internal/identity"
	"github.com/umbra-im/umbra/internal/wire"
)

// What group traffic looks like inside the encryption (docs/groups-engine.md).
//
// A group's mailbox holds records (envelope.TypeGroup, sealed under the
// mailbox key of the epoch secret): membership ops (self-signed), chain
// distributions (signed by the member's account key) and sender-key
// messages (signed by the chain). Pairwise sessions carry group controls
// (envelope.KindGroup): invitations and fresh epoch secrets.

// Record kinds.
const (
	recOp   = 1 // Data: a membership op
	recDist = 2 // Data: a senderkey.Distribution; Author, Epoch, Sig set
	recMsg  = 3 // Data: a senderkey message of an encoded envelope.Content
)

// groupRecord is what a group envelope carries.
type groupRecord struct {
	Kind   uint8  `cbor:"1,keyasint"`
	Data   []byte `cbor:"2,keyasint"`
	Author []byte `cbor:"3,keyasint,omitempty"`
	Op     []byte `cbor:"4,keyasint,omitempty"` // recDist: the op whose secret the chain is for
	Sig    []byte `cbor:"5,keyasint,omitempty"`
}

const distContext = "Umbra_GroupDistribution_v1"

// distSigned is what a distribution's author signs: the group, the op
// whose epoch secret the chain belongs to, and the distribution.
func distSigned(group, op, dist []byte) []byte {
	m := make([]byte, 0, len(distContext)+8+len(group)+len(op)+len(dist))
	m = append(m, distContext...)
	m = binary.BigEndian.AppendUint32(m, uint32(len(group)))
	m = append(m, group...)
	m = binary.BigEndian.AppendUint32(m, uint32(len(op)))
	m = append(m, op...)
	return append(m, dist...)
}

// signedDist makes the record that hands out our chain in a group.
func signedDist(acct *identity.Account, group, op, dist []byte) groupRecord {
	return groupRecord{Kind: recDist, Data: dist, Author: acct.Public().SigningKey, Op: op,
		Sig: acct.Sign(distSigned(group, op, dist))}
}

var errBadRecord = errors.New("malformed group record")

// parseGroupRecord decodes and checks a record's shape (not its meaning).
func parseGroupRecord(b []byte) (*groupRecord, error) {
	var r groupRecord
	if err := wire.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRecord, err)
	}
	switch r.Kind {
	case recOp, recMsg:
		if len(r.Data) == 0 || r.Author != nil || r.Op != nil || r.Sig != nil {
			return nil, fmt.Errorf("%w: fields of kind %d", errBadRecord, r.Kind)
		}
	case recDist:
		if len(r.Data) == 0 || len(r.Data) > 256 || len(r.Author) != ed25519.PublicKeySize ||
			len(r.Op) != 32 || len(r.Sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("%w: distribution fields", errBadRecord)
		}
	default:
		return nil, fmt.Errorf("%w: kind %d", errBadRecord, r.Kind)
	}
	return &r, nil
}

// verify checks a distribution record's signature for group.
func (r *groupRecord) verify(group []byte) bool {
	return ed25519.Verify(ed25519.PublicKey(r.Author), distSigned(group, r.Op, r.Data), r.Sig)
}

// Control types.
const (
	ctlInvite = 1 // Ops: the whole log; SecretOp, Secret: the secret in force
	ctlSecret = 2 // Ops: the op that set a fresh secret; SecretOp, Secret
)

// groupControl is the Body of a KindGroup content.
type groupControl struct {
	Group    []byte   `cbor:"1,keyasint"`
	Type     uint8    `cbor:"2,keyasint"`
	Ops      [][]byte `cbor:"3,keyasint"`
	SecretOp []byte   `cbor:"4,keyasint"`
	Secret   []byte   `cbor:"5,keyasint"`
	// Cutoffs (a removal's secret): how far the remover had read each
	// chain of the removed members.
	Cutoffs []chainCutoff `cbor:"6,keyasint,omitempty"`
}

type chainCutoff struct {
	Member []byte `cbor:"1,keyasint"`
	Chain  []byte `cbor:"2,keyasint"`
	Iter   uint32 `cbor:"3,keyasint"`
}

// parseGroupControl decodes and checks a control's shape. The ops
// themselves are parsed (and their signatures checked) by the group
// worker.
func parseGroupControl(b []byte) (*groupControl, error) {
	var c groupControl
	if err := wire.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("malformed group control: %v", err)
	}
	if len(c.Group) != 32 || (c.Type != ctlInvite && c.Type != ctlSecret) || len(c.Ops) == 0 ||
		len(c.Ops) > membership.MaxOps || len(c.SecretOp) != 32 || len(c.Secret) != membership.SecretSize {
		return nil, errors.New("malformed group control: fields")
	}
	for _, o := range c.Ops {
		if len(o) == 0 || len(o) > membership.MaxOpSize {
			return nil, errors.New("malformed group control: op size")
		}
	}
	if len(c.Cutoffs) > membership.MaxMembers*maxChainsPerMember || len(c.Cutoffs) > 0 && c.Type != ctlSecret {
		return nil, errors.New("malformed group control: cutoffs")
	}
	for _, x := range c.Cutoffs {
		if len(x.Member) != 32 || len(x.Chain) != 16 {
			return nil, errors.New("malformed group control: cutoff fields")
		}
	}
	return &c, nil
}
