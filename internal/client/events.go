package client

import "sync"

// Event types.
const (
	EventMessage = "message" // a new message (incoming or outgoing)
	EventState   = "state"   // a message changed state (sent, delivered, read)
	EventContact = "contact" // a contact or message request changed
	EventNetwork = "network" // path or swarm health changed
)

// Event is what the engine tells its subscribers (the daemon's WebSocket,
// waiting CLI commands).
type Event struct {
	Type    string   `json:"type"`
	Message *Message `json:"message,omitempty"`
	Contact *Contact `json:"contact,omitempty"`
	Group   *Group   `json:"group,omitempty"`
	// Peer and Typing: a typing indicator (EventTyping).
	Peer   string `json:"peer,omitempty"`
	Typing bool   `json:"typing,omitempty"`
}

// bus fans events out to subscribers; a slow subscriber loses events
// rather than blocking the engine (each has a buffer).
type bus struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
	hook func(Event) // sees every event first, synchronously (the search index)
}

func (b *bus) subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 256)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[chan Event]struct{})
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, ch)
			b.mu.Unlock()
		})
	}
}

func (b *bus) publish(ev Event) {
	if b.hook != nil {
		b.hook(ev)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}
