package ratchet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// Protocol constants. They are part of the wire protocol: changing one
// breaks every existing session and the regression vectors.
const (
	// pqxdhInfo is PQXDH's info parameter (spec §2.1): application,
	// curve, hash and KEM.
	pqxdhInfo = "Umbra_CURVE25519_SHA-256_ML-KEM-768"
	// ratchetInfo is the HKDF info of KDF_RK (Double Ratchet spec §5.2).
	ratchetInfo = "Umbra_Ratchet"
	// messageKeyInfo is the HKDF info expanding a message key into an
	// AES-256-GCM key and nonce (Double Ratchet spec §5.2, ENCRYPT).
	messageKeyInfo = "Umbra_MessageKeys"
	// mailboxSecretInfo derives the pairwise mailbox secret from SK.
	mailboxSecretInfo = "Umbra_PairwiseMailbox_v1"

	// curveTypeX25519 is EncodeEC's curve-type byte (libsignal's DJB type).
	curveTypeX25519 = 0x05
	// kemTypeMLKEM768 is EncodeKEM's KEM-type byte (Umbra's own value).
	kemTypeMLKEM768 = 0x0A
)

// Sizes of keys on the wire.
const (
	keySize     = 32 // X25519 keys, chain and root keys
	kemKeySize  = mlkem.EncapsulationKeySize768
	kemCTSize   = mlkem.CiphertextSize768
	kemSeedSize = mlkem.SeedSize
	sigSize     = 64
)

// encodeEC is PQXDH's EncodeEC: the curve type byte, then the u-coordinate.
func encodeEC(pub []byte) []byte {
	return append([]byte{curveTypeX25519}, pub...)
}

// encodeKEM is PQXDH's EncodeKEM: the KEM type byte, then the key.
func encodeKEM(pub []byte) []byte {
	return append([]byte{kemTypeMLKEM768}, pub...)
}

// pqxdhKDF is PQXDH's KDF (spec §2.2): HKDF-SHA-256 with a zero salt of
// hash length, IKM = F ‖ KM where F is 32 0xFF bytes, and the info string.
func pqxdhKDF(km []byte) ([]byte, error) {
	ikm := make([]byte, 0, 32+len(km))
	for range 32 {
		ikm = append(ikm, 0xFF)
	}
	ikm = append(ikm, km...)
	defer clear(ikm)
	return hkdf.Key(sha256.New, ikm, make([]byte, sha256.Size), pqxdhInfo, keySize)
}

// kdfRK is the Double Ratchet's KDF_RK (spec §5.2): HKDF-SHA-256 with the
// root key as salt and the DH output as input key material; 64 bytes of
// output split into the new root key and a chain key.
func kdfRK(rk, dhOut []byte) (newRK, ck []byte, err error) {
	out, err := hkdf.Key(sha256.New, dhOut, rk, ratchetInfo, 2*keySize)
	if err != nil {
		return nil, nil, err
	}
	return out[:keySize], out[keySize:], nil
}

// kdfCK is the Double Ratchet's KDF_CK (spec §5.2): HMAC-SHA-256 keyed by
// the chain key over the single byte 0x01 for the message key and 0x02 for
// the next chain key.
func kdfCK(ck []byte) (nextCK, mk []byte) {
	m := hmac.New(sha256.New, ck)
	m.Write([]byte{0x01})
	mk = m.Sum(nil)
	m.Reset()
	m.Write([]byte{0x02})
	nextCK = m.Sum(nil)
	return nextCK, mk
}

// messageAEAD expands a message key as the spec's ENCRYPT recommends (HKDF
// with a zero salt and an application info string) into an AES-256-GCM key
// and a 96-bit nonce. A message key encrypts exactly one message, so the
// derived nonce is never reused under its key.
func messageAEAD(mk []byte) (cipher.AEAD, []byte, error) {
	okm, err := hkdf.Key(sha256.New, mk, make([]byte, sha256.Size), messageKeyInfo, 32+12)
	if err != nil {
		return nil, nil, err
	}
	defer clear(okm[:32])
	block, err := aes.NewCipher(okm[:32])
	if err != nil {
		return nil, nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return g, okm[32:], nil
}

// messageAD is the AEAD associated data: CONCAT(AD, header) from spec §3.4,
// made unambiguous by a length prefix on AD.
func messageAD(ad, header []byte) []byte {
	out := make([]byte, 0, 4+len(ad)+len(header))
	out = binary.BigEndian.AppendUint32(out, uint32(len(ad)))
	out = append(out, ad...)
	return append(out, header...)
}

func sealMessage(mk, ad, header, plaintext []byte) ([]byte, error) {
	g, nonce, err := messageAEAD(mk)
	if err != nil {
		return nil, err
	}
	return g.Seal(nil, nonce, plaintext, messageAD(ad, header)), nil
}

func openMessage(mk, ad, header, ciphertext []byte) ([]byte, error) {
	g, nonce, err := messageAEAD(mk)
	if err != nil {
		return nil, err
	}
	pt, err := g.Open(nil, nonce, ciphertext, messageAD(ad, header))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// newX25519 makes an X25519 key pair from 32 bytes of rnd.
func newX25519(rnd io.Reader) (*ecdh.PrivateKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	defer clear(b[:])
	return ecdh.X25519().NewPrivateKey(b[:])
}

// newMLKEM makes an ML-KEM-768 key pair from a 64-byte seed read from rnd.
func newMLKEM(rnd io.Reader) (*mlkem.DecapsulationKey768, error) {
	var b [kemSeedSize]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return nil, fmt.Errorf("read random: %w", err)
	}
	defer clear(b[:])
	return mlkem.NewDecapsulationKey768(b[:])
}

// encapsulate is ML-KEM encapsulation. It draws its randomness from the
// system's secure source; tests replace it with the derandomized
// mlkemtest.Encapsulate768 to make vectors reproducible.
var encapsulate = func(ek *mlkem.EncapsulationKey768, _ io.Reader) (shared, ct []byte, err error) {
	shared, ct = ek.Encapsulate()
	return shared, ct, nil
}

func orDefault(rnd io.Reader) io.Reader {
	if rnd == nil {
		return rand.Reader
	}
	return rnd
}

func dh(priv *ecdh.PrivateKey, pub []byte) ([]byte, error) {
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return priv.ECDH(p)
}
