package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// AccountID is an account's Ed25519 identity public key. Its text form
// (String) is
//
//	"umbra1" ‖ base32(key ‖ checksum)
//
// where base32 is RFC 4648 in lower case without padding and checksum is the
// first 4 bytes of SHA-256("Umbra_AccountID_v1" ‖ key): 64 characters in all,
// only lower-case letters and digits 2–7, so it survives copy/paste, e-mail
// line breaks (surrounding whitespace is ignored) and QR alphanumeric mode
// (upper case is accepted).
type AccountID [ed25519.PublicKeySize]byte

// AccountIDPrefix starts every account ID's text form.
const AccountIDPrefix = "umbra1"

// AccountIDLen is the length of an account ID's text form.
const AccountIDLen = len(AccountIDPrefix) + 58 // ceil((32+4)*8/5)

const (
	accountIDTag      = "Umbra_AccountID_v1"
	accountIDChecksum = 4
)

var accountIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrInvalidAccountID is wrapped by every error of ParseAccountID, including
// ErrAccountIDChecksum.
var ErrInvalidAccountID = errors.New("invalid account ID")

// ErrAccountIDChecksum is returned by ParseAccountID when the text is well
// formed but its checksum does not match: almost always a typo.
var ErrAccountIDChecksum error = &checksumError{}

type checksumError struct{}

func (*checksumError) Error() string        { return "this account ID has a typo: checksum mismatch" }
func (*checksumError) Is(target error) bool { return target == ErrInvalidAccountID }

func accountIDSum(key []byte) []byte {
	h := sha256.New()
	h.Write([]byte(accountIDTag))
	h.Write(key)
	return h.Sum(nil)[:accountIDChecksum]
}

// String returns the checksummed text form of the account ID.
func (id AccountID) String() string {
	buf := make([]byte, 0, len(id)+accountIDChecksum)
	buf = append(buf, id[:]...)
	buf = append(buf, accountIDSum(id[:])...)
	return AccountIDPrefix + accountIDEncoding.EncodeToString(buf)
}

// PublicKey returns the Ed25519 public key.
func (id AccountID) PublicKey() ed25519.PublicKey { return append(ed25519.PublicKey(nil), id[:]...) }

// Equal reports whether two IDs are the same, in constant time.
func (id AccountID) Equal(other AccountID) bool {
	return subtle.ConstantTimeCompare(id[:], other[:]) == 1
}

// MarshalText implements encoding.TextMarshaler (the String form).
func (id AccountID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseAccountID.
func (id *AccountID) UnmarshalText(b []byte) error {
	p, err := ParseAccountID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseAccountID parses the text form of an account ID. Surrounding
// whitespace and upper case are accepted. Errors are written for users and
// all wrap ErrInvalidAccountID; a well-formed ID whose checksum does not
// match (a mistyped character) returns ErrAccountIDChecksum.
func ParseAccountID(s string) (AccountID, error) {
	var id AccountID
	s = strings.ToLower(strings.TrimSpace(s))
	if !strings.HasPrefix(s, AccountIDPrefix) {
		return id, fmt.Errorf("%w: an account ID starts with %q", ErrInvalidAccountID, AccountIDPrefix)
	}
	if len(s) != AccountIDLen {
		return id, fmt.Errorf("%w: an account ID is %d characters long, this one has %d (a part is missing or extra)",
			ErrInvalidAccountID, AccountIDLen, len(s))
	}
	body := s[len(AccountIDPrefix):]
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return id, fmt.Errorf("%w: this account ID has a typo: %q at position %d cannot appear in an account ID",
				ErrInvalidAccountID, rune(c), len(AccountIDPrefix)+i+1)
		}
	}
	raw, err := accountIDEncoding.DecodeString(body)
	if err != nil || len(raw) != len(id)+accountIDChecksum {
		return id, fmt.Errorf("%w: not decodable", ErrInvalidAccountID)
	}
	// The last character carries 2 unused bits; a typo there that changes
	// only those bits is caught by requiring the canonical encoding.
	if accountIDEncoding.EncodeToString(raw) != body {
		return id, ErrAccountIDChecksum
	}
	if subtle.ConstantTimeCompare(accountIDSum(raw[:len(id)]), raw[len(id):]) != 1 {
		return id, ErrAccountIDChecksum
	}
	copy(id[:], raw)
	return id, nil
}
