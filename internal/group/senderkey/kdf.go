package senderkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// Protocol constants: changing one breaks every existing chain.
const (
	// messageKeyInfo is the HKDF info expanding a message key into an
	// AES-256-GCM key and nonce.
	messageKeyInfo = "Umbra_SenderKey_MessageKeys_v1"
	// signContext prefixes the input of a message signature.
	signContext = "Umbra_SenderKey_Signature_v1"
	// aeadContext prefixes the AEAD associated data of a message.
	aeadContext = "Umbra_SenderKey_AEAD_v1"

	keySize     = 32 // chain keys, message keys, Ed25519 seeds and public keys
	chainIDSize = 16
	sigSize     = 64
	tagSize     = 16
)

// kdfCK is Sender Keys' chain step (libsignal SenderChainKey, the Double
// Ratchet's KDF_CK): HMAC-SHA-256 keyed by the chain key over the byte 0x01
// for the message key and 0x02 for the next chain key.
func kdfCK(ck []byte) (nextCK, mk []byte) {
	m := hmac.New(sha256.New, ck)
	m.Write([]byte{0x01})
	mk = m.Sum(nil)
	m.Reset()
	m.Write([]byte{0x02})
	nextCK = m.Sum(nil)
	return nextCK, mk
}

// messageAEAD expands a message key with HKDF-SHA-256 (zero salt) into an
// AES-256-GCM key and a 96-bit nonce. A message key encrypts exactly one
// message, so the derived nonce is never reused under its key.
func messageAEAD(mk []byte) (cipher.AEAD, []byte, error) {
	okm, err := hkdf.Key(sha256.New, mk, make([]byte, sha256.Size), messageKeyInfo, keySize+12)
	if err != nil {
		return nil, nil, err
	}
	defer clear(okm[:keySize])
	block, err := aes.NewCipher(okm[:keySize])
	if err != nil {
		return nil, nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return g, okm[keySize:], nil
}

// aeadAD is the AEAD associated data: the context, the caller's associated
// data (length-prefixed) and the message's version, chain ID and
// iteration.
func aeadAD(ad []byte, version uint, id ChainID, iteration uint32) []byte {
	out := make([]byte, 0, len(aeadContext)+4+len(ad)+1+chainIDSize+4)
	out = append(out, aeadContext...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(ad)))
	out = append(out, ad...)
	out = append(out, byte(version))
	out = append(out, id[:]...)
	return binary.BigEndian.AppendUint32(out, iteration)
}

// signInput is what a message signature covers: the context, the caller's
// associated data (length-prefixed) and the exact encoded message body
// (version, chain ID, iteration, ciphertext).
func signInput(ad, body []byte) []byte {
	out := make([]byte, 0, len(signContext)+4+len(ad)+len(body))
	out = append(out, signContext...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(ad)))
	out = append(out, ad...)
	return append(out, body...)
}

func seal(mk, ad []byte, id ChainID, iteration uint32, plaintext []byte) ([]byte, error) {
	g, nonce, err := messageAEAD(mk)
	if err != nil {
		return nil, err
	}
	return g.Seal(nil, nonce, plaintext, aeadAD(ad, MessageVersion, id, iteration)), nil
}

func open(mk, ad []byte, m *Message) ([]byte, error) {
	g, nonce, err := messageAEAD(mk)
	if err != nil {
		return nil, err
	}
	pt, err := g.Open(nil, nonce, m.Ciphertext, aeadAD(ad, m.Version, m.ChainID, m.Iteration))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
