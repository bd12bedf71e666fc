package node

import "github.com/umbra-im/umbra/internal/wire"

// SetClientObserver makes the node started with c call f with the kind and
// raw body of every client request it is about to handle (direct or from
// an onion exit), so tests can check what nodes see of their clients.
func SetClientObserver(c *Config, f func(kind wire.Kind, body []byte)) { c.clientObserver = f }
