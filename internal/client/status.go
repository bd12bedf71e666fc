package client

import (
	"context"
	"sort"
	"time"

	"github.com/umbra-im/umbra/internal/wire"
)

// Conversation is one row of the conversation list.
type Conversation struct {
	Peer   string `json:"peer"`
	Name   string `json:"name,omitempty"`
	State  string `json:"state"` // contact, request, blocked
	Unread int    `json:"unread"`
	// Verified and Muted: see Contact (trust.go).
	Verified bool     `json:"verified,omitempty"`
	Muted    bool     `json:"muted,omitempty"`
	Last     *Message `json:"last,omitempty"`
	// ProfileName and Avatar (a data: URL) are what the peer's profile
	// says; Name, the user's own name for them, wins for display.
	ProfileName string `json:"profile_name,omitempty"`
	Avatar      string `json:"avatar,omitempty"`
	Timer       uint32 `json:"timer,omitempty"` // disappearing messages, seconds
}

// Conversations lists contacts and requests with their last message and
// unread count, most recent first.
func (e *Engine) Conversations() ([]Conversation, error) {
	contacts, err := e.d.contacts()
	if err != nil {
		return nil, err
	}
	out := make([]Conversation, 0, len(contacts))
	for _, c := range contacts {
		if c.State == ContactBlocked {
			continue
		}
		msgs, err := e.d.messages(c.ID)
		if err != nil {
			return nil, err
		}
		conv := Conversation{Peer: c.ID, Name: c.Name, State: c.State, Verified: c.Verified, Muted: c.Muted}
		e.decorateConv(&conv)
		for i := range msgs {
			if !msgs[i].Outgoing && msgs[i].State == StateReceived {
				conv.Unread++
			}
		}
		if len(msgs) > 0 {
			conv.Last = &msgs[len(msgs)-1]
		}
		out = append(out, conv)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return lastAt(out[i]).After(lastAt(out[j]))
	})
	return out, nil
}

func lastAt(c Conversation) time.Time {
	if c.Last == nil {
		return time.Time{}
	}
	return c.Last.SentAt
}

// HopInfo describes one node of a path or swarm.
type HopInfo struct {
	Role   string `json:"role"` // guard, middle, exit, swarm
	PeerID string `json:"peer_id"`
	Addr   string `json:"addr,omitempty"`
	OK     *bool  `json:"ok,omitempty"` // answered a probe (swarm members)
}

// NetworkStatus is what the network view shows.
type NetworkStatus struct {
	Nodes      int       `json:"nodes"`
	Direct     bool      `json:"direct"`
	Path       []HopInfo `json:"path"`  // an onion path as the engine would use now
	Swarm      []HopInfo `json:"swarm"` // the swarm of the user's card (its public prekey data)
	SwarmAlive int       `json:"swarm_alive"`
}

// NetworkStatus reports the onion path in use and probes the swarm of the
// user's card, its public prekey data (through onion paths).
func (e *Engine) NetworkStatus(ctx context.Context) NetworkStatus {
	st := NetworkStatus{Direct: e.cfg.Direct}
	net := e.nodes()
	if net == nil {
		return st // offline, or a network without nodes (tests)
	}
	st.Nodes = len(net.Nodes())
	mb := cardMailbox(e.acct.ID())
	members := net.Swarm(mb)
	if pm := net.Paths(); pm != nil && len(members) > 0 {
		if path, err := pm.Path(members[0]); err == nil {
			for i, n := range path {
				st.Path = append(st.Path, HopInfo{Role: []string{"guard", "middle", "exit"}[i], PeerID: n.ID.String(), Addr: addrOf(n.Addrs)})
			}
		}
	}
	type res struct {
		i  int
		ok bool
	}
	results := make(chan res, len(members))
	for i, n := range members {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			var resp wire.PublicResp
			err := net.Call(cctx, n, wire.KindPublicReq, &wire.PublicReq{Mailbox: mb[:], Limit: 1}, wire.KindPublicResp, &resp)
			results <- res{i, err == nil}
		}()
	}
	oks := make([]bool, len(members))
	for range members {
		r := <-results
		oks[r.i] = r.ok
	}
	for i, n := range members {
		ok := oks[i]
		if ok {
			st.SwarmAlive++
		}
		st.Swarm = append(st.Swarm, HopInfo{Role: "swarm", PeerID: n.ID.String(), Addr: addrOf(n.Addrs), OK: &ok})
	}
	return st
}

func addrOf[T interface{ String() string }](as []T) string {
	if len(as) == 0 {
		return ""
	}
	return as[0].String()
}
