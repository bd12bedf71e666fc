package cover

import crand "crypto/rand"

// seed is a fresh ChaCha8 seed from the operating system.
func seed() [32]byte {
	var b [32]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic("cover: no randomness: " + err.Error())
	}
	return b
}
