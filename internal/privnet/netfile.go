package privnet

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Limits on a network file.
const (
	MaxFileBytes   = 256 << 10
	MaxBootstrap   = 256
	MaxNameLen     = 64
	maxAddrLineLen = 1024
)

// File is a network file: node addresses to bootstrap from and, for a
// private network, the network's name, the operator's public key and the
// operator's signature over the name, key and addresses.
//
//	# comment
//	network acme
//	operator <base64 Ed25519 public key>
//	/ip4/192.0.2.1/tcp/4001/p2p/12D3Koo...
//	bootstrap-sig <base64 Ed25519 signature>
//
// A file of addresses only (a devnet's bootstrap.txt) is a public network
// file, read as before.
type File struct {
	Network  string
	Operator ed25519.PublicKey // nil: a public network
	Addrs    []string
	Sig      []byte // bootstrap signature (private networks)
}

// Private reports whether the file names an operator.
func (f *File) Private() bool { return len(f.Operator) != 0 }

func bootstrapSigBytes(network string, op ed25519.PublicKey, addrs []string) []byte {
	b := []byte("umbra/bootstrap/v1\x00")
	b = append(b, network...)
	b = append(b, 0)
	b = append(b, op...)
	for _, a := range addrs {
		b = append(b, a...)
		b = append(b, '\n')
	}
	return b
}

// SignBootstrap signs the file's name, operator key and addresses.
func (f *File) SignBootstrap(key ed25519.PrivateKey) error {
	if !bytes.Equal(key.Public().(ed25519.PublicKey), f.Operator) {
		return errors.New("privnet: this key is not the network's operator key")
	}
	f.Sig = ed25519.Sign(key, bootstrapSigBytes(f.Network, f.Operator, f.Addrs))
	return nil
}

// Format renders the file.
func (f *File) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# umbra network file\n")
	if f.Network != "" {
		fmt.Fprintf(&b, "network %s\n", f.Network)
	}
	if f.Private() {
		fmt.Fprintf(&b, "operator %s\n", base64.StdEncoding.EncodeToString(f.Operator))
	}
	for _, a := range f.Addrs {
		b.WriteString(a + "\n")
	}
	if len(f.Sig) > 0 {
		fmt.Fprintf(&b, "bootstrap-sig %s\n", base64.StdEncoding.EncodeToString(f.Sig))
	}
	return b.Bytes()
}

// ParseFile parses and checks a network file. A private network's
// addresses must carry a valid operator signature; a private file without
// addresses needs none.
func ParseFile(data []byte) (*File, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("network file: %d bytes, at most %d", len(data), MaxFileBytes)
	}
	f := &File{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxAddrLineLen+64)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "/") {
			if len(f.Addrs) >= MaxBootstrap {
				return nil, fmt.Errorf("network file: more than %d addresses", MaxBootstrap)
			}
			f.Addrs = append(f.Addrs, l)
			continue
		}
		key, val, _ := strings.Cut(l, " ")
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "network":
			if f.Network != "" {
				return nil, fmt.Errorf("network file line %d: network named twice", line)
			}
			if val == "" || len(val) > MaxNameLen || strings.ContainsAny(val, " \t\x00") {
				return nil, fmt.Errorf("network file line %d: bad network name", line)
			}
			f.Network = val
		case "operator":
			if f.Operator != nil {
				return nil, fmt.Errorf("network file line %d: operator named twice", line)
			}
			var k []byte
			if k, err = base64.StdEncoding.DecodeString(val); err != nil || len(k) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("network file line %d: operator must be a base64 Ed25519 public key", line)
			}
			f.Operator = k
		case "bootstrap-sig":
			if f.Sig != nil {
				return nil, fmt.Errorf("network file line %d: two signatures", line)
			}
			if f.Sig, err = base64.StdEncoding.DecodeString(val); err != nil || len(f.Sig) != ed25519.SignatureSize {
				return nil, fmt.Errorf("network file line %d: bootstrap-sig must be a base64 Ed25519 signature", line)
			}
		default:
			return nil, fmt.Errorf("network file line %d: unknown entry %q", line, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("network file: %w", err)
	}
	if !f.Private() {
		if f.Sig != nil {
			return nil, errors.New("network file: a bootstrap signature without an operator key")
		}
		return f, nil
	}
	if f.Network == "" {
		return nil, errors.New("network file: a private network needs a name (network NAME)")
	}
	if len(f.Addrs) > 0 {
		if f.Sig == nil {
			return nil, errors.New("network file: the bootstrap list is not signed by the operator (umbra network sign-bootstrap)")
		}
		if !ed25519.Verify(f.Operator, bootstrapSigBytes(f.Network, f.Operator, f.Addrs), f.Sig) {
			return nil, errors.New("network file: the bootstrap signature does not verify against the operator key")
		}
	}
	return f, nil
}

// ReadFile reads and parses a network file.
func ReadFile(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read network file: %w", err)
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("network file %s: %d bytes, at most %d", path, st.Size(), MaxFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read network file: %w", err)
	}
	f, err := ParseFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}
