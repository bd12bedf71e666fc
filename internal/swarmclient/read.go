package swarmclient

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/umbra-im/umbra/internal/mailbox"
	"github.com/umbra-im/umbra/internal/member"
	"github.com/umbra-im/umbra/internal/onion"
	"github.com/umbra-im/umbra/internal/swarm"
	"github.com/umbra-im/umbra/internal/wire"
)

// Reads: retrieving a mailbox from every reachable swarm member, paging,
// deletes, and the public namespace.

// Message is a retrieved message.
type Message struct {
	Hash      [32]byte
	Namespace int32
	Timestamp time.Time
	Expiry    time.Time
	Data      []byte
}

// Get reads every message of the mailbox from its swarm, merging the
// answers of all reachable members (a replica that is behind cannot hide a
// message). If there is none and wait > 0, it long-polls the members until
// one has a message or wait passes. Messages come sorted by sender
// timestamp, then hash.
func (c *Client) Get(ctx context.Context, key *mailbox.Key, wait time.Duration) ([]Message, error) {
	msgs, err := c.gather(ctx, key, 0)
	if err != nil || len(msgs) > 0 || wait <= 0 {
		return msgs, err
	}
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		msgs, err := c.gather(ctx, key, min(left, 25*time.Second))
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// gather asks up to R reachable swarm members in parallel. With wait > 0 it
// returns as soon as one answers with messages.
func (c *Client) gather(ctx context.Context, key *mailbox.Key, wait time.Duration) ([]Message, error) {
	return c.fanOut(ctx, key.ID(), wait, func(ctx context.Context, n *member.Node) ([]wire.Message, error) {
		return c.retrieveAll(ctx, n, key, wait)
	}, func(m *wire.Message) (Message, bool) {
		if len(m.Hash) != 32 {
			return Message{}, false
		}
		return Message{Hash: [32]byte(m.Hash), Namespace: m.Namespace,
			Timestamp: time.UnixMilli(m.Timestamp), Expiry: time.UnixMilli(m.Expiry), Data: m.Data}, true
	})
}

// GetSince reads what key's mailbox got since cur's cursors (everything
// for a new cursor), from up to R reachable swarm members, merged by hash,
// and moves the cursors; with nothing new and wait > 0 it long-polls until
// a member has something or wait passes. A mailbox that several readers
// share and nobody empties (a group's) is read so, without reading it
// whole every time. Entries whose hash does not match their content are
// dropped, so a node cannot make one entry look like two. A member that
// lost the cursor's entry answers from the start: callers must tolerate
// entries they have seen.
func (c *Client) GetSince(ctx context.Context, key *mailbox.Key, cur *DropCursor, wait time.Duration) ([]Message, error) {
	mb := key.ID()
	return c.fanOut(ctx, mb, wait, func(ctx context.Context, n *member.Node) ([]wire.Message, error) {
		msgs, err := pages(cur.After(n.ID.String()), wait, func(after []byte, wait time.Duration) ([]wire.Message, bool, error) {
			resp, err := c.Retrieve(ctx, n, key, after, wait)
			if err != nil {
				return nil, false, err
			}
			return resp.Messages, resp.More, nil
		})
		if err == nil && len(msgs) > 0 {
			cur.Set(n.ID.String(), msgs[len(msgs)-1].Hash)
		}
		return msgs, err
	}, func(m *wire.Message) (Message, bool) {
		if len(m.Hash) != 32 || m.Namespace != 0 || swarm.MessageHash(mb, m.Namespace, m.Timestamp, m.Expiry, m.Data) != [32]byte(m.Hash) {
			return Message{}, false
		}
		return Message{Hash: [32]byte(m.Hash), Namespace: m.Namespace,
			Timestamp: time.UnixMilli(m.Timestamp), Expiry: time.UnixMilli(m.Expiry), Data: m.Data}, true
	})
}

// fanOut asks up to R reachable swarm members of mb in parallel with read
// (the next in rank when one fails), keeps what keep accepts, merged by
// hash, and returns it sorted by sender timestamp, then hash. With
// wait > 0 it returns as soon as one member answers with something kept;
// the others are cancelled.
func (c *Client) fanOut(ctx context.Context, mb mailbox.ID, wait time.Duration,
	read func(context.Context, *member.Node) ([]wire.Message, error), keep func(*wire.Message) (Message, bool)) ([]Message, error) {
	ranked := c.ranked(mb)
	r := c.Params().Replication
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		msgs []wire.Message
		err  error
	}
	results := make(chan result, len(ranked))
	next, inflight, answered := 0, 0, 0
	launch := func() {
		n := ranked[next]
		next++
		inflight++
		go func() {
			msgs, err := read(ctx, n)
			results <- result{msgs, err}
		}()
	}
	for next < len(ranked) && next < r {
		launch()
	}
	byHash := map[[32]byte]Message{}
	var errs []error
	for inflight > 0 {
		res := <-results
		inflight--
		if res.err != nil {
			errs = append(errs, res.err)
			if ctx.Err() == nil && next < len(ranked) && answered+inflight < r {
				launch() // a member is down: ask the next in rank
			}
			continue
		}
		answered++
		for i := range res.msgs {
			if m, ok := keep(&res.msgs[i]); ok {
				byHash[m.Hash] = m
			}
		}
		if wait > 0 && len(byHash) > 0 {
			break
		}
	}
	if answered == 0 {
		return nil, fmt.Errorf("no swarm node answered: %w", errors.Join(errs...))
	}
	out := make([]Message, 0, len(byHash))
	for _, m := range byHash {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Timestamp.Equal(out[j].Timestamp) {
			return out[i].Timestamp.Before(out[j].Timestamp)
		}
		return string(out[i].Hash[:]) < string(out[j].Hash[:])
	})
	return out, nil
}

// retrieveAll pages through one node's copy of the mailbox, ReadBytes a
// page.
func (c *Client) retrieveAll(ctx context.Context, n *member.Node, key *mailbox.Key, wait time.Duration) ([]wire.Message, error) {
	return pages(nil, wait, func(after []byte, wait time.Duration) ([]wire.Message, bool, error) {
		resp, err := c.Retrieve(ctx, n, key, after, wait)
		if err != nil {
			return nil, false, err
		}
		return resp.Messages, resp.More, nil
	})
}

// maxPages bounds the pages one read takes from one node.
const maxPages = 1000

// pages reads page after page from the cursor after (waiting up to wait
// on the first only) until a page says there is no more.
func pages(after []byte, wait time.Duration, page func(after []byte, wait time.Duration) ([]wire.Message, bool, error)) ([]wire.Message, error) {
	var all []wire.Message
	for range maxPages {
		msgs, more, err := page(after, wait)
		if err != nil {
			return nil, err
		}
		all = append(all, msgs...)
		if !more || len(msgs) == 0 {
			return all, nil
		}
		after = msgs[len(msgs)-1].Hash
		wait = 0
	}
	return all, nil
}

// ReadBytes is the byte cap of every read (RetrieveReq.MaxBytes,
// PublicReq.MaxBytes): the answer fits the everyday onion reply
// (onion.Everyday), whatever the mailbox holds; retrieveAll pages for the
// rest. A single message larger than that still comes, alone, in the next
// packet class.
var ReadBytes = onion.ReplyRoom(onion.Everyday) - readAnswerOverhead

// readAnswerOverhead bounds the encoding of a retrieve or public-read
// answer besides its messages: the kind byte, map and array heads, More.
const readAnswerOverhead = 16

// Retrieve sends one signed retrieve request to node n, asking at most
// ReadBytes of messages.
func (c *Client) Retrieve(ctx context.Context, n *member.Node, key *mailbox.Key, after []byte, wait time.Duration) (*wire.RetrieveResp, error) {
	id := key.ID()
	req := &wire.RetrieveReq{Mailbox: id[:], After: after, WaitMs: wait.Milliseconds(), MaxBytes: ReadBytes}
	req.Auth.Timestamp, req.Auth.Sig = key.Sign(mailbox.MethodRetrieve, time.Now(), req.AuthFields())
	cctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
	defer cancel()
	var resp wire.RetrieveResp
	if err := c.call(cctx, n, wire.KindRetrieveReq, req, wire.KindRetrieveResp, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// MaxDeleteHashes is how many hashes one delete request may name (the
// nodes' limit); Delete sends longer lists in chunks.
const MaxDeleteHashes = 1000

// Delete removes messages from the mailbox's swarm, in requests of at most
// MaxDeleteHashes hashes, each signed by the mailbox key (every replica
// checks that signature before it deletes). It returns how many live
// messages the answering nodes removed.
func (c *Client) Delete(ctx context.Context, key *mailbox.Key, hashes [][32]byte) (int, error) {
	total := 0
	for len(hashes) > 0 {
		part := hashes[:min(len(hashes), MaxDeleteHashes)]
		hashes = hashes[len(part):]
		n, err := c.deleteChunk(ctx, key, part)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (c *Client) deleteChunk(ctx context.Context, key *mailbox.Key, hashes [][32]byte) (int, error) {
	id := key.ID()
	req := &wire.DeleteReq{Mailbox: id[:]}
	for _, h := range hashes {
		req.Hashes = append(req.Hashes, h[:])
	}
	var errs []error
	for _, n := range c.Swarm(id) {
		req.Auth.Timestamp, req.Auth.Sig = key.Sign(mailbox.MethodDelete, time.Now(), req.AuthFields())
		var resp wire.DeleteResp
		if err := c.call(ctx, n, wire.KindDeleteReq, req, wire.KindDeleteResp, &resp); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return resp.Deleted, nil
	}
	return 0, fmt.Errorf("delete failed on every swarm node: %w", errors.Join(errs...))
}

// ReadPublic reads the public namespace of a mailbox (prekey bundles) from
// its swarm, merging the answers of up to R reachable members. It keeps
// only messages signed by the mailbox key and returns their payloads;
// callers still verify what the payload claims.
func (c *Client) ReadPublic(ctx context.Context, mb mailbox.ID) ([]Message, error) {
	byHash := map[[32]byte]Message{}
	var errs []error
	answered := 0
	for _, n := range c.Swarm(mb) {
		var resp wire.PublicResp
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := c.call(cctx, n, wire.KindPublicReq, &wire.PublicReq{Mailbox: mb[:], MaxBytes: ReadBytes}, wire.KindPublicResp, &resp)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		answered++
		for _, m := range resp.Messages {
			if len(m.Hash) != 32 {
				continue
			}
			payload, err := mailbox.OpenPublic(mb, m.Timestamp, m.Expiry, m.Data)
			if err != nil {
				continue // not the owner's: a node should have refused it
			}
			byHash[[32]byte(m.Hash)] = Message{Hash: [32]byte(m.Hash), Namespace: m.Namespace,
				Timestamp: time.UnixMilli(m.Timestamp), Expiry: time.UnixMilli(m.Expiry), Data: payload}
		}
		if answered >= 2 {
			break
		}
	}
	if answered == 0 {
		return nil, fmt.Errorf("no swarm node answered: %w", errors.Join(errs...))
	}
	out := make([]Message, 0, len(byHash))
	for _, m := range byHash {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out, nil
}
