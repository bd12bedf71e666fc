package identity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestWordlistHash(t *testing.T) {
	// SHA-256 of the official bitcoin/bips bip-0039/english.txt.
	const want = "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"
	sum := sha256.Sum256([]byte(strings.Join(wordlist, "\n") + "\n"))
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("word list SHA-256 %s, want %s", got, want)
	}
	if len(wordIndex) != 2048 {
		t.Fatalf("%d distinct words", len(wordIndex))
	}
	// The property suggestWord relies on.
	seen := map[string]bool{}
	for _, w := range wordlist {
		p := w[:min(4, len(w))]
		if seen[p] {
			t.Fatalf("prefix %q not unique", p)
		}
		seen[p] = true
	}
}

type bip39Vector struct {
	Entropy  string `json:"entropy"`
	Mnemonic string `json:"mnemonic"`
}

func loadBIP39Vectors(t *testing.T) []bip39Vector {
	t.Helper()
	b, err := os.ReadFile("testdata/bip39_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []bip39Vector }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) < 8 {
		t.Fatalf("only %d vectors", len(f.Vectors))
	}
	return f.Vectors
}

func TestBIP39Vectors(t *testing.T) {
	n256 := 0
	for _, v := range loadBIP39Vectors(t) {
		ent, err := hex.DecodeString(v.Entropy)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMnemonic(ent)
		if err != nil {
			t.Fatal(err)
		}
		if m != v.Mnemonic {
			t.Fatalf("entropy %s:\n got %s\nwant %s", v.Entropy, m, v.Mnemonic)
		}
		back, err := EntropyFromMnemonic(v.Mnemonic)
		if err != nil {
			t.Fatalf("decode %q: %v", v.Mnemonic, err)
		}
		if !bytes.Equal(back, ent) {
			t.Fatalf("decode %q gave %x", v.Mnemonic, back)
		}
		if len(ent) == 32 {
			n256++
			seed, err := SeedFromPhrase(v.Mnemonic)
			if err != nil || !bytes.Equal(seed, ent) {
				t.Fatalf("SeedFromPhrase: %v", err)
			}
			a, err := Restore(v.Mnemonic)
			if err != nil {
				t.Fatal(err)
			}
			if a.Phrase() != v.Mnemonic {
				t.Fatal("account phrase differs from the vector")
			}
		}
	}
	if n256 < 4 {
		t.Fatalf("only %d 256-bit vectors", n256)
	}
}

func TestMnemonicEntropySizes(t *testing.T) {
	for _, n := range []int{0, 4, 12, 15, 17, 33, 64} {
		if _, err := NewMnemonic(make([]byte, n)); err == nil {
			t.Fatalf("%d bytes of entropy accepted", n)
		}
	}
}

func TestPhraseUnknownWord(t *testing.T) {
	phrase := newTestAccount(t, 11).Phrase()
	words := strings.Fields(phrase)
	words[2] = "abandn"
	_, err := SeedFromPhrase(strings.Join(words, " "))
	var we *PhraseWordError
	if !errors.As(err, &we) {
		t.Fatalf("got %v, want a PhraseWordError", err)
	}
	if we.Position != 3 || we.Word != "abandn" || we.Suggestion != "abandon" {
		t.Fatalf("got %+v", we)
	}
	if want := `unknown word "abandn" at position 3`; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
	if !strings.Contains(err.Error(), `did you mean "abandon"`) {
		t.Fatalf("error %q lacks the suggestion", err)
	}
	// Restore reports the same.
	if _, err := Restore(strings.Join(words, " ")); !errors.As(err, &we) {
		t.Fatalf("Restore: %v", err)
	}

	for _, c := range []struct{ typo, suggestion string }{
		{"zo", "zoo"},           // one insertion away, unique
		{"xyzzy", ""},           // nothing close
		{"abandonx", "abandon"}, // prefix
		{"bo", ""},              // many words one edit away
		{"ab", "lab"},
	} {
		if got := suggestWord(c.typo); got != c.suggestion {
			t.Errorf("suggestWord(%q) = %q, want %q", c.typo, got, c.suggestion)
		}
	}
	// A very long garbage word is truncated in the message.
	words[0] = strings.Repeat("q", 200)
	_, err = SeedFromPhrase(strings.Join(words, " "))
	if !errors.As(err, &we) || we.Position != 1 || len(err.Error()) > 120 {
		t.Fatalf("long word: %v", err)
	}
}

func TestPhraseChecksumMismatch(t *testing.T) {
	phrase := newTestAccount(t, 12).Phrase()
	words := strings.Fields(phrase)
	mismatches := 0
	// Replace each position by another valid word; with 8 checksum bits,
	// most substitutions must fail, and none may decode to the same seed.
	orig, _ := SeedFromPhrase(phrase)
	for pos := range words {
		w := append([]string(nil), words...)
		w[pos] = wordlist[(wordIndex[w[pos]]+1)%2048]
		seed, err := SeedFromPhrase(strings.Join(w, " "))
		if err == nil {
			if bytes.Equal(seed, orig) {
				t.Fatal("a different phrase gave the same seed")
			}
			continue
		}
		if !errors.Is(err, ErrPhraseChecksum) {
			t.Fatalf("pos %d: %v", pos, err)
		}
		if !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("message %q", err)
		}
		mismatches++
	}
	if mismatches < 18 {
		t.Fatalf("only %d of 24 substitutions caught", mismatches)
	}
	// The last word carries the checksum: every other value of its 8
	// checksum bits must be rejected.
	last := wordIndex[words[23]]
	for cs := range 256 {
		idx := last&^0xff | cs
		if idx == last {
			continue
		}
		w := append([]string(nil), words...)
		w[23] = wordlist[idx]
		if _, err := SeedFromPhrase(strings.Join(w, " ")); !errors.Is(err, ErrPhraseChecksum) {
			t.Fatalf("checksum value %d: %v", cs, err)
		}
	}
	// Swapping two different words is caught (with overwhelming odds).
	w := append([]string(nil), words...)
	for i := 0; i+1 < len(w); i++ {
		if w[i] != w[i+1] {
			w[i], w[i+1] = w[i+1], w[i]
			break
		}
	}
	if _, err := SeedFromPhrase(strings.Join(w, " ")); !errors.Is(err, ErrPhraseChecksum) {
		t.Fatalf("swap: %v", err)
	}
}

func TestPhraseLength(t *testing.T) {
	words := strings.Fields(newTestAccount(t, 13).Phrase())
	for _, n := range []int{0, 1, 12, 23, 25, 48} {
		var w []string
		for i := range n {
			w = append(w, words[i%24])
		}
		_, err := SeedFromPhrase(strings.Join(w, " "))
		if !errors.Is(err, ErrPhraseLength) {
			t.Fatalf("%d words: %v", n, err)
		}
	}
	if _, err := EntropyFromMnemonic(strings.Join(words[:13], " ")); !errors.Is(err, ErrPhraseLength) {
		t.Fatalf("13 words: %v", err)
	}
}
