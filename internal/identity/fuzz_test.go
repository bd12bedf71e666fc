package identity

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseAccountID: never panics; whatever parses re-encodes to the
// canonical form of its input; every error wraps ErrInvalidAccountID.
func FuzzParseAccountID(f *testing.F) {
	for i := range 4 {
		s := newTestAccount(f, byte(i)).ID().String()
		f.Add(s)
		f.Add(strings.ToUpper(s))
		f.Add(" " + s[:40] + "x" + s[41:] + "\n")
		f.Add(s[:len(s)-1])
	}
	f.Add("")
	f.Add("umbra1")
	f.Add(AccountIDPrefix + strings.Repeat("7", 58))
	f.Add(AccountIDPrefix + strings.Repeat("a", 58))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseAccountID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAccountID) {
				t.Fatalf("error %v does not wrap ErrInvalidAccountID", err)
			}
			return
		}
		if got, want := id.String(), strings.ToLower(strings.TrimSpace(s)); got != want {
			t.Fatalf("parsed %q but re-encodes as %q", want, got)
		}
	})
}

// FuzzPhrase: never panics; a decoded phrase re-encodes to the normalised
// input; errors are of the documented kinds.
func FuzzPhrase(f *testing.F) {
	for i := range 3 {
		p := newTestAccount(f, byte(i)).Phrase()
		f.Add(p)
		f.Add(strings.ToUpper(p))
		f.Add(strings.Replace(p, " ", "  ", 3))
		f.Add(p[:len(p)-2])
	}
	f.Add("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about")
	f.Add("")
	f.Add("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote")
	f.Fuzz(func(t *testing.T, s string) {
		ent, err := EntropyFromMnemonic(s)
		var we *PhraseWordError
		if err != nil {
			if !errors.Is(err, ErrPhraseLength) && !errors.Is(err, ErrPhraseChecksum) && !errors.As(err, &we) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		} else {
			m, err := NewMnemonic(ent)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Join(strings.Fields(strings.ToLower(s)), " "); m != want {
				t.Fatalf("decoded %q re-encodes as %q", want, m)
			}
		}
		seed, err := SeedFromPhrase(s)
		if err == nil {
			if _, err := FromSeed(seed); err != nil {
				t.Fatal(err)
			}
		}
	})
}
