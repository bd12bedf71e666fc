package client

import (
	"testing"

	"github.com/umbra-im/umbra/internal/backup"
	"github.com/umbra-im/umbra/internal/keystore"
)

// LightVaultForTest makes backup and database key derivations cheap for
// one test.
func LightVaultForTest(t testing.TB) {
	oldB, oldP := backupParams, passphraseArgon2
	backupParams, passphraseArgon2 = backup.LightParams, keystore.LightArgon2
	t.Cleanup(func() { backupParams, passphraseArgon2 = oldB, oldP })
}
