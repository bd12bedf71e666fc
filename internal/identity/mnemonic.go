package identity

import (
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"strings"
)

// The official BIP39 English word list (bitcoin/bips bip-0039/english.txt),
// one word a line. TestWordlistHash pins its SHA-256.
//
//go:embed wordlist_english.txt
var wordlistText string

var (
	wordlist  []string       // index → word
	wordIndex map[string]int // word → index
)

func init() {
	wordlist = strings.Split(strings.TrimSuffix(wordlistText, "\n"), "\n")
	if len(wordlist) != 2048 {
		panic(fmt.Sprintf("identity: BIP39 word list has %d words, want 2048", len(wordlist)))
	}
	wordIndex = make(map[string]int, len(wordlist))
	for i, w := range wordlist {
		wordIndex[w] = i
	}
}

// PhraseWords is the number of words of an account recovery phrase.
const PhraseWords = 24

// ErrPhraseChecksum means every word is a valid BIP39 word but the phrase's
// checksum does not match: a word was swapped for another valid word, or the
// words are out of order.
var ErrPhraseChecksum = errors.New("recovery phrase checksum mismatch: a word is wrong or two words are swapped")

// ErrPhraseLength means the phrase does not have a valid number of words.
var ErrPhraseLength = errors.New("recovery phrase has the wrong number of words")

// PhraseWordError reports a word that is not in the BIP39 English list.
type PhraseWordError struct {
	Position   int    // 1-based position of the word in the phrase
	Word       string // the word as typed (lower-cased)
	Suggestion string // a close list word, or ""
}

func (e *PhraseWordError) Error() string {
	msg := fmt.Sprintf("recovery phrase: unknown word %q at position %d", e.Word, e.Position)
	if e.Suggestion != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Suggestion)
	}
	return msg
}

// NewMnemonic encodes entropy (16, 20, 24, 28 or 32 bytes) as a BIP39
// English mnemonic: ENT bits of entropy followed by the first ENT/32 bits of
// SHA-256(entropy), split into 11-bit word indexes.
func NewMnemonic(entropy []byte) (string, error) {
	n := len(entropy)
	if n < 16 || n > 32 || n%4 != 0 {
		return "", fmt.Errorf("identity: BIP39 entropy must be 16, 20, 24, 28 or 32 bytes, got %d", n)
	}
	sum := sha256.Sum256(entropy)
	bits := append(append(make([]byte, 0, n+1), entropy...), sum[0])
	words := (n*8 + n*8/32) / 11
	out := make([]string, words)
	for i := range words {
		out[i] = wordlist[readBits11(bits, i*11)]
	}
	return strings.Join(out, " "), nil
}

// readBits11 returns the 11-bit big-endian value starting at bit offset off.
func readBits11(b []byte, off int) int {
	v := 0
	for j := range 11 {
		bit := off + j
		v = v<<1 | int(b[bit/8]>>(7-bit%8)&1)
	}
	return v
}

// EntropyFromMnemonic decodes a BIP39 English mnemonic of 12, 15, 18, 21 or
// 24 words back to its entropy, checking the checksum. Words may be separated
// by any whitespace and be in any case. Errors: ErrPhraseLength (wrapped), a
// *PhraseWordError for an unknown word, ErrPhraseChecksum.
func EntropyFromMnemonic(phrase string) ([]byte, error) {
	words := strings.Fields(strings.ToLower(phrase))
	switch len(words) {
	case 12, 15, 18, 21, 24:
	default:
		return nil, fmt.Errorf("%w: a phrase has 12 to 24 words, this one has %d", ErrPhraseLength, len(words))
	}
	return decodeWords(words)
}

// SeedFromPhrase decodes a 24-word account recovery phrase to the 32-byte
// master seed. Errors are those of EntropyFromMnemonic; a phrase that is not
// 24 words long is an ErrPhraseLength.
func SeedFromPhrase(phrase string) ([]byte, error) {
	words := strings.Fields(strings.ToLower(phrase))
	if len(words) != PhraseWords {
		return nil, fmt.Errorf("%w: a recovery phrase has %d words, this one has %d", ErrPhraseLength, PhraseWords, len(words))
	}
	return decodeWords(words)
}

func decodeWords(words []string) ([]byte, error) {
	total := len(words) * 11
	csBits := total / 33
	entBytes := (total - csBits) / 8
	buf := make([]byte, (total+7)/8)
	for i, w := range words {
		idx, ok := wordIndex[w]
		if !ok {
			return nil, &PhraseWordError{Position: i + 1, Word: truncateWord(w), Suggestion: suggestWord(w)}
		}
		for j := range 11 {
			if idx>>(10-j)&1 == 1 {
				bit := i*11 + j
				buf[bit/8] |= 1 << (7 - bit%8)
			}
		}
	}
	entropy := buf[:entBytes]
	sum := sha256.Sum256(entropy)
	mask := byte(0xff) << (8 - csBits)
	if buf[entBytes]&mask != sum[0]&mask {
		clear(buf)
		return nil, ErrPhraseChecksum
	}
	out := append([]byte(nil), entropy...)
	clear(buf)
	return out, nil
}

// truncateWord keeps error messages short when someone pastes garbage.
func truncateWord(w string) string {
	if len(w) > 24 {
		return w[:24] + "…"
	}
	return w
}

// suggestWord finds the list word a typo most likely meant: the unique word
// sharing the first four letters (BIP39 English words are unique by their
// first four letters), else the unique word one edit away.
func suggestWord(w string) string {
	if len(w) >= 4 {
		for _, cand := range wordlist {
			if strings.HasPrefix(cand, w[:4]) {
				return cand
			}
		}
	}
	found := ""
	for _, cand := range wordlist {
		if withinOneEdit(w, cand) {
			if found != "" {
				return ""
			}
			found = cand
		}
	}
	return found
}

// withinOneEdit reports whether a and b differ by at most one insertion,
// deletion or substitution.
func withinOneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return i == len(a) || a[i+1:] == b[i+1:]
	}
	return a[i:] == b[i+1:]
}
