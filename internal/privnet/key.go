package privnet

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/umbra-im/umbra/internal/fsutil"
)

const keyHeader = "umbra operator key v1\n"

// NewOperatorKey makes an operator key and saves it at path with mode
// 0600; it refuses to overwrite an existing file.
func NewOperatorKey(path string) (ed25519.PrivateKey, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("privnet: %s exists; not overwriting an operator key", path)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	b := []byte(keyHeader + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n")
	if err := fsutil.WriteFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("privnet: save operator key: %w", err)
	}
	return priv, nil
}

// LoadOperatorKey reads an operator key saved by NewOperatorKey. It
// refuses a key file that others than its owner may read.
func LoadOperatorKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("privnet: operator key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("privnet: operator key %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("privnet: operator key: %w", err)
	}
	s, ok := strings.CutPrefix(string(b), keyHeader)
	if !ok {
		return nil, errors.New("privnet: not an umbra operator key file")
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("privnet: operator key file is corrupt")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
