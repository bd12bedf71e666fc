package wire

import (
	"encoding/binary"
	"fmt"
)

// ProtoMembers is record gossip between nodes, one-shot: one stream per
// exchange. Every request/response protocol runs on sessions (the
// Proto*Session IDs below).
const ProtoMembers = "/umbra/members/1"

// MaxMessageSize is the largest message data a node accepts (a protocol limit).
const MaxMessageSize = 256 << 10

// Kind names the body type of a frame.
type Kind uint8

const (
	KindError Kind = iota + 1
	KindStoreReq
	KindStoreResp
	KindRetrieveReq
	KindRetrieveResp
	KindDeleteReq
	KindDeleteResp
	KindNodesReq
	KindNodesResp
	KindReplicateReq
	KindReplicateResp
	KindFetchReq
	KindFetchResp
	KindMembersDigest
	KindMembersDelta
	KindMembersPush
	KindSyncReq
	KindSyncResp
	KindOnion
	KindPublicReq
	KindPublicResp
	KindDropReq
	KindDropResp
	KindSharePutReq
	KindSharePutResp
	KindShareGetReq
	KindShareGetResp
)

var kindNames = map[Kind]string{
	KindError: "error", KindStoreReq: "store-req", KindStoreResp: "store-resp",
	KindRetrieveReq: "retrieve-req", KindRetrieveResp: "retrieve-resp",
	KindDeleteReq: "delete-req", KindDeleteResp: "delete-resp",
	KindNodesReq: "nodes-req", KindNodesResp: "nodes-resp",
	KindReplicateReq: "replicate-req", KindReplicateResp: "replicate-resp",
	KindFetchReq: "fetch-req", KindFetchResp: "fetch-resp",
	KindMembersDigest: "members-digest", KindMembersDelta: "members-delta",
	KindMembersPush: "members-push", KindSyncReq: "sync-req", KindSyncResp: "sync-resp",
	KindOnion: "onion", KindPublicReq: "public-req", KindPublicResp: "public-resp",
	KindDropReq: "drop-req", KindDropResp: "drop-resp",
	KindSharePutReq: "share-put-req", KindSharePutResp: "share-put-resp",
	KindShareGetReq: "share-get-req", KindShareGetResp: "share-get-resp",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error codes carried in an Error frame.
const (
	CodeBadRequest   = 400
	CodeUnauthorized = 401
	CodeForbidden    = 403 // a node asked about a mailbox outside its scope
	CodeGone         = 410 // the mailbox owner deleted the message
	CodeTooLarge     = 413
	CodeRateLimited  = 429
	CodeInternal     = 500
	CodeUnavailable  = 503 // quorum not reached
	CodeMailboxFull  = 507
	CodeStoreFull    = 508
)

// Error is the body of an error frame. It implements error.
type Error struct {
	Code int    `cbor:"1,keyasint"`
	Msg  string `cbor:"2,keyasint"`
	// WorkBits, on a 429 refusal of a first-contact message, is the
	// proof-of-work the node asks for (RequestNamespace, DropNamespace).
	WorkBits int `cbor:"3,keyasint,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("node error %d: %s", e.Code, e.Msg) }

// Errorf builds an Error.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Auth proves control of a mailbox key: an Ed25519 signature by the mailbox
// key over the method, the mailbox, the timestamp and the request's own fields.
type Auth struct {
	Timestamp int64  `cbor:"1,keyasint"` // unix ms
	Sig       []byte `cbor:"2,keyasint"`
}

// StoreReq asks a node to store a message in a mailbox's swarm.
type StoreReq struct {
	Mailbox   []byte `cbor:"1,keyasint"`
	Namespace int32  `cbor:"2,keyasint"`
	Timestamp int64  `cbor:"3,keyasint"` // unix ms, chosen by the sender
	TTL       int64  `cbor:"4,keyasint"` // ms
	Data      []byte `cbor:"5,keyasint"`
}

// Receipt is a node's signed statement that it holds a message on disk.
type Receipt struct {
	Node []byte `cbor:"1,keyasint"` // peer ID bytes
	Sig  []byte `cbor:"2,keyasint"`
}

// StoreResp acknowledges a quorum write. A message that was stored before
// and since deleted by the mailbox owner (a sender's retry after the
// recipient read it) is answered with the owner's signed deletion
// instead of receipts: proof that it was delivered.
type StoreResp struct {
	Hash     []byte    `cbor:"1,keyasint"`
	Expiry   int64     `cbor:"2,keyasint"`
	Receipts []Receipt `cbor:"3,keyasint"`
	Deleted  *Tomb     `cbor:"4,keyasint,omitempty"`
}

// Message is a stored message as it travels between nodes and to clients.
type Message struct {
	Hash      []byte `cbor:"1,keyasint"`
	Mailbox   []byte `cbor:"2,keyasint"`
	Namespace int32  `cbor:"3,keyasint"`
	Timestamp int64  `cbor:"4,keyasint"`
	Expiry    int64  `cbor:"5,keyasint"`
	Data      []byte `cbor:"6,keyasint"`
}

// RetrieveReq reads a mailbox, optionally after a cursor, optionally waiting.
//
// MaxBytes, if positive, bounds the answer's messages, each counted as
// len(Data) + MessageOverhead; the node always answers at least one
// message (so a single large one can still be read) and sets More when it
// left any out. Clients set it so that an answer fits their everyday
// onion packet (onion.Everyday) and page with After.
type RetrieveReq struct {
	Mailbox  []byte `cbor:"1,keyasint"`
	After    []byte `cbor:"3,keyasint,omitempty"`
	Limit    int    `cbor:"4,keyasint,omitempty"`
	WaitMs   int64  `cbor:"5,keyasint,omitempty"`
	Auth     Auth   `cbor:"6,keyasint"`
	MaxBytes int    `cbor:"7,keyasint,omitempty"`
}

// MessageOverhead bounds the CBOR of a Message besides its Data (hash,
// mailbox, namespace, times, map and length heads: 103 bytes at most),
// with room to spare: what RetrieveReq.MaxBytes and PublicReq.MaxBytes
// count per message on top of its data.
const MessageOverhead = 128

// RetrieveResp returns messages in the node's arrival order.
type RetrieveResp struct {
	Messages []Message `cbor:"1,keyasint"`
	More     bool      `cbor:"2,keyasint"`
}

// DeleteReq deletes messages from a mailbox's swarm.
type DeleteReq struct {
	Mailbox []byte   `cbor:"1,keyasint"`
	Hashes  [][]byte `cbor:"2,keyasint"`
	Auth    Auth     `cbor:"3,keyasint"`
}

// DeleteResp says how many live messages were removed at the answering node.
type DeleteResp struct {
	Deleted int `cbor:"1,keyasint"`
}

// NodesReq asks for the node list.
type NodesReq struct{}

// Params are the network parameters every node and client must agree on.
type Params struct {
	Network     string `cbor:"1,keyasint"`
	Replication int    `cbor:"2,keyasint"`
	PoWBits     int    `cbor:"3,keyasint"`
	// MinAgeMs is how long a node must have been reachable before it
	// takes placements (swarm seats).
	MinAgeMs int64 `cbor:"4,keyasint,omitempty"`
}

// NodesResp carries the answering node's view of the live node list.
type NodesResp struct {
	Params  Params   `cbor:"1,keyasint"`
	Records [][]byte `cbor:"2,keyasint"` // signed node records
	// Ages says, for each record, how long (whole seconds) the answering
	// node has seen that node reachable; clients take a node as old
	// enough for placements when a majority of the nodes they ask say so.
	Ages []uint64 `cbor:"3,keyasint,omitempty"`
	// Allow is, on a private network, the operator's signed allow-list
	// the answering node holds: clients keep only records of nodes on it.
	Allow []byte `cbor:"4,keyasint,omitempty"`
}

// ReplicateReq writes replicas (from a coordinator or from repair), or,
// when Deletes is set, applies signed-off deletions (tombstones).
type ReplicateReq struct {
	Messages []Message `cbor:"1,keyasint"`
	Deletes  []Tomb    `cbor:"2,keyasint,omitempty"`
}

// Tomb is a deletion as the mailbox owner signed it: the hashes, the
// timestamp and the signature of its DeleteReq. Nodes pass it on as is,
// so every replica checks the owner's signature before it deletes.
type Tomb struct {
	Mailbox   []byte   `cbor:"1,keyasint"`
	Hashes    [][]byte `cbor:"2,keyasint"`
	Timestamp int64    `cbor:"3,keyasint,omitempty"`
	Sig       []byte   `cbor:"4,keyasint,omitempty"`
}

// AuthFields is what the owner's signature covers besides method, mailbox
// and timestamp: the hashes, in order (as DeleteReq.AuthFields).
func (t *Tomb) AuthFields() []byte { return hashFields(t.Hashes) }

// ReplicateResp answers per message: a receipt when stored (or already held),
// else an error code.
type ReplicateResp struct {
	Results []ReplicaResult `cbor:"1,keyasint"`
}

// ReplicaResult is the outcome for one replicated message.
type ReplicaResult struct {
	Receipt []byte `cbor:"1,keyasint,omitempty"` // signature
	Code    int    `cbor:"2,keyasint,omitempty"`
}

// FetchReq asks a node for messages by hash (repair), and for the signed
// deletions of hashes it holds tombstones for.
type FetchReq struct {
	Hashes [][]byte `cbor:"1,keyasint"`
	Tombs  [][]byte `cbor:"2,keyasint,omitempty"` // tombstoned hashes of TombsOf
	// TombsOf is the mailbox the Tombs hashes belong to.
	TombsOf []byte `cbor:"3,keyasint,omitempty"`
}

// FetchResp returns the live messages among those asked for, and the
// signed deletions that cover the tombstones asked for.
type FetchResp struct {
	Messages []Message `cbor:"1,keyasint"`
	Tombs    []Tomb    `cbor:"2,keyasint,omitempty"`
}

// MemberVersion names a record by node and sequence.
type MemberVersion struct {
	Node []byte `cbor:"1,keyasint"`
	Seq  uint64 `cbor:"2,keyasint"`
}

// MembersDigest opens a gossip exchange: the versions the sender holds,
// or (Sums) a sum of them per bucket of nodes (see member.Table.Sums).
type MembersDigest struct {
	Params   Params          `cbor:"1,keyasint"`
	Versions []MemberVersion `cbor:"2,keyasint"`
	// AllowVersion is the version of the private network's allow-list
	// the sender holds (0: none, or a public network).
	AllowVersion uint64 `cbor:"3,keyasint,omitempty"`
	// Sums, when set, stands in for Versions: the answer is then the
	// answerer's versions in the buckets whose sums differ (Buckets and
	// Versions of MembersDelta), and the push that follows carries the
	// records the answerer lacks and names the ones it should send back.
	Sums []byte `cbor:"4,keyasint,omitempty"`
}

// MembersDelta answers with records the sender lacks or has older, and the
// nodes whose records the answerer wants.
type MembersDelta struct {
	Records [][]byte `cbor:"1,keyasint"`
	Want    [][]byte `cbor:"2,keyasint"`
	// Allow is the answerer's signed allow-list, when it is newer than the
	// digest's AllowVersion; AllowVersion is the answerer's version.
	Allow        []byte `cbor:"3,keyasint,omitempty"`
	AllowVersion uint64 `cbor:"4,keyasint,omitempty"`
	// Buckets and Versions answer a digest of Sums: the buckets whose
	// sums differ and the answerer's versions in them (none: the tables
	// agree).
	Buckets  []uint16        `cbor:"5,keyasint,omitempty"`
	Versions []MemberVersion `cbor:"6,keyasint,omitempty"`
}

// MembersPush closes the exchange with the wanted records (and the
// sender's allow-list, when it is newer than the delta's AllowVersion).
type MembersPush struct {
	Records [][]byte `cbor:"1,keyasint"`
	Allow   []byte   `cbor:"2,keyasint,omitempty"`
	// Want names the nodes whose records the pusher wants back (after a
	// delta of Buckets): the answerer sends them in one more MembersPush.
	Want [][]byte `cbor:"3,keyasint,omitempty"`
}

// MailboxDigest summarises a mailbox's set of hashes (live and deleted).
type MailboxDigest struct {
	Mailbox []byte `cbor:"1,keyasint"`
	Count   uint32 `cbor:"2,keyasint"`
	XOR     []byte `cbor:"3,keyasint"`
}

// SyncReq offers digests of mailboxes both sides should hold, or asks for
// the next page of a mailbox's entries.
type SyncReq struct {
	Digests []MailboxDigest `cbor:"1,keyasint"`
	Pages   []SyncPage      `cbor:"2,keyasint,omitempty"`
}

// SyncPage asks for a mailbox's entries after a hash.
type SyncPage struct {
	Mailbox []byte `cbor:"1,keyasint"`
	After   []byte `cbor:"2,keyasint"`
}

// SyncEntry is one hash of a mailbox's set.
type SyncEntry struct {
	Hash    []byte `cbor:"1,keyasint"`
	Deleted bool   `cbor:"2,keyasint,omitempty"`
}

// MailboxEntries lists one page of a mailbox's set at the answering node:
// its entries with hashes after After (from the start if empty), in hash
// order; More says the set goes on after the last entry.
type MailboxEntries struct {
	Mailbox []byte      `cbor:"1,keyasint"`
	Entries []SyncEntry `cbor:"2,keyasint"`
	More    bool        `cbor:"3,keyasint,omitempty"`
	After   []byte      `cbor:"4,keyasint,omitempty"`
}

// SyncResp lists, for each mailbox whose digest differed, the answerer's set.
type SyncResp struct {
	Diffs []MailboxEntries `cbor:"1,keyasint"`
	// Same lists, by index into the request's Digests, the mailboxes whose
	// digest the answering node found equal to its own (and in scope): a
	// node that holds a copy outside the swarm drops it once every member
	// says so (node/sync.go). Older nodes leave it out.
	Same []uint32 `cbor:"2,keyasint,omitempty"`
}

// AuthFields is what a retrieve signature covers besides method, mailbox and
// timestamp: After ‖ be64(Limit) ‖ be64(WaitMs), then be64(MaxBytes) if it
// is set (so a request without it signs what it did before the field).
func (r *RetrieveReq) AuthFields() []byte {
	b := append([]byte{}, r.After...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Limit))
	b = binary.BigEndian.AppendUint64(b, uint64(r.WaitMs))
	if r.MaxBytes != 0 {
		b = binary.BigEndian.AppendUint64(b, uint64(r.MaxBytes))
	}
	return b
}

// AuthFields is what a delete signature covers besides method, mailbox and
// timestamp: the hashes, in order.
func (r *DeleteReq) AuthFields() []byte { return hashFields(r.Hashes) }

func hashFields(hashes [][]byte) []byte {
	b := make([]byte, 0, 32*len(hashes))
	for _, h := range hashes {
		b = append(b, h...)
	}
	return b
}

// OnionPacket carries one fixed-size onion packet (request or reply).
type OnionPacket struct {
	Data []byte `cbor:"1,keyasint"`
}

// PublicNamespace holds messages anyone may read without the mailbox key:
// an account's signed prekey bundles live there, in its request mailbox.
// Only the mailbox owner may write there (mailbox.SignPublic); it has a
// quota of its own.
const PublicNamespace int32 = 1

// RequestNamespace holds first-contact messages: a write there needs a
// proof-of-work bound to the message (pow.RequestWork), which every node
// checks, and the namespace has a quota of its own, so junk elsewhere in
// the mailbox cannot crowd out a stranger's first message.
const RequestNamespace int32 = 2

// DropNamespace holds shared first-contact drops: a mailbox ID there is
// any 32 bytes (a request bucket, a plain hash with no key behind it), many
// accounts share one, and every reader reads all of it without
// authentication (DropReq), so a read tells nobody which account it is
// for. A write needs the same node-checked proof-of-work as the request
// namespace (mailbox.SealRequest, RequiredRequestWork over the drop
// entries of that mailbox), its TTL is at most MaxDropTTL, it has a quota
// of its own, and its entries cannot be deleted: they only expire. They
// never mix with the mailbox's other namespaces: an authenticated
// retrieve leaves them out, a drop read returns nothing else.
const DropNamespace int32 = 3

// MaxDropTTL bounds the TTL of a drop-namespace message: first contacts
// are read within days, and an entry nobody may delete should not
// outstay that.
const MaxDropTTL int64 = 3 * 24 * 60 * 60 * 1000 // ms

// DropReq reads a mailbox's drop namespace, without authentication, in
// the answering node's arrival order: entries after the After cursor (the
// hash of the last entry of the previous page; from the start if empty or
// unknown to the node), at most Limit of them, waiting up to WaitMs for a
// first one when there is none.
type DropReq struct {
	Mailbox []byte `cbor:"1,keyasint"`
	After   []byte `cbor:"2,keyasint,omitempty"`
	Limit   int    `cbor:"3,keyasint,omitempty"`
	WaitMs  int64  `cbor:"4,keyasint,omitempty"`
	// MaxBytes caps the answer as RetrieveReq.MaxBytes does.
	MaxBytes int `cbor:"5,keyasint,omitempty"`
}

// DropResp returns one page of drop entries; More says the node holds more
// after the last one.
type DropResp struct {
	Messages []Message `cbor:"1,keyasint"`
	More     bool      `cbor:"2,keyasint,omitempty"`
}

// PublicReq reads the newest messages of a mailbox's public namespace.
// MaxBytes, if positive, bounds them as in RetrieveReq: the newest that
// fit, at least one.
type PublicReq struct {
	Mailbox  []byte `cbor:"1,keyasint"`
	Limit    int    `cbor:"2,keyasint,omitempty"`
	MaxBytes int    `cbor:"3,keyasint,omitempty"`
}

// PublicResp returns them, newest last.
type PublicResp struct {
	Messages []Message `cbor:"1,keyasint"`
}

// SharePutReq asks the node it reaches (the onion exit) to keep one file
// share until Expiry (Unix ms, at most files.MaxShareTTL ahead). Addr
// must be files.AddressOf(Data), and Work a proof of the work the node
// asks (files.ShareWork, over files.WorkPrefix(Addr, Expiry)); a node
// that wants more refuses with CodeRateLimited and the bits in WorkBits.
// Storing a share the node holds already extends its expiry.
type SharePutReq struct {
	Addr   []byte `cbor:"1,keyasint"`
	Expiry int64  `cbor:"2,keyasint"`
	Work   uint64 `cbor:"3,keyasint"`
	Data   []byte `cbor:"4,keyasint"`
}

// SharePutResp acknowledges a share on disk: Sig is the node's signature
// over files.ReceiptMessage(Addr, Expiry).
type SharePutResp struct {
	Expiry int64  `cbor:"1,keyasint"`
	Sig    []byte `cbor:"2,keyasint"`
}

// ShareGetReq reads one share by its address; no authentication (the
// address is the hash of the encrypted share: who has it may read it).
type ShareGetReq struct {
	Addr []byte `cbor:"1,keyasint"`
}

// ShareGetResp is the share (the reader checks it against its address);
// a share the node does not hold is an error with code CodeGone.
type ShareGetResp struct {
	Data []byte `cbor:"1,keyasint"`
}

// Session protocols carry requests pipelined with request ids on one
// long-lived stream (see internal/p2p Session). Client-facing requests
// share one protocol; node-to-node protocols are only served to peers in
// the node list. (The /1 one-shot forms of these were removed: no
// released peer spoke them.)
const (
	ProtoStoreSession     = "/umbra/store/2"     // client: store, retrieve, delete, node list, public and drop reads
	ProtoReplicateSession = "/umbra/replicate/2" // node: write replicas, fetch by hash
	ProtoSyncSession      = "/umbra/sync/2"      // node: anti-entropy digests
	ProtoOnionSession     = "/umbra/onion/2"     // anyone: onion packets (guard, middle, exit)
)

// MaxClientRequest bounds a request frame (kind and body) on the client
// store protocols: one message and its fields.
const MaxClientRequest = MaxMessageSize + 4096
