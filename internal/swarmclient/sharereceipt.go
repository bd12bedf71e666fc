package swarmclient

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/umbra-im/umbra/internal/files"
)

// ErrBadShareReceipt is returned for a share receipt that does not verify.
var ErrBadShareReceipt = errors.New("swarmclient: the node's share receipt does not verify")

// VerifyShareReceipt checks a node's receipt for a file share (the Sig of
// a wire.SharePutResp): node's signature, by the key its peer ID holds,
// over files.ReceiptMessage(a, expiry). The caller passes the expiry it
// asked for, so a receipt for a shorter one fails.
func VerifyShareReceipt(node peer.ID, a files.Address, expiry int64, sig []byte) error {
	pub, err := node.ExtractPublicKey()
	if err != nil {
		return errors.Join(ErrBadShareReceipt, err)
	}
	if ok, err := pub.Verify(files.ReceiptMessage(a, expiry), sig); err != nil || !ok {
		return ErrBadShareReceipt
	}
	return nil
}
