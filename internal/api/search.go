package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// maxQueryBytes bounds a search query.
const maxQueryBytes = 1024

// search answers GET /api/v1/search?q=WORDS[&peer=ID][&limit=N]: the
// messages holding every word of q (each as a word prefix, any case),
// newest first, with a snippet whose matching words are marked.
func (s *Server) search(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	text := q.Get("q")
	if len(text) > maxQueryBytes {
		return nil, badRequest("q: at most %d bytes", maxQueryBytes)
	}
	peer := q.Get("peer")
	if peer != "" {
		id, err := identity.ParseAccountID(peer)
		if err != nil {
			return nil, badRequest("peer: %v", err)
		}
		peer = id.String()
	}
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > client.MaxSearchLimit {
			return nil, badRequest("limit: want 1 to %d", client.MaxSearchLimit)
		}
		limit = n
	}
	res, err := e.Search(text, peer, limit)
	if errors.Is(err, client.ErrEmptySearch) {
		return nil, badRequest("%v", err)
	}
	return nonNil(res, err)
}
