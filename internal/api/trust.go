package api

import (
	"net/http"

	"github.com/umbra-im/umbra/internal/client"
)

// trustRoutes: safety numbers, verified marks, block/unblock, mute, and
// deleting a conversation's local history.
//
//	GET    /api/v1/contacts/{id}/safety-number  the number, its groups, a QR code, verified
//	PUT    /api/v1/contacts/{id}/verified       {"verified": bool}
//	POST   /api/v1/contacts/{id}/block          any account: a contact, a request, a stranger
//	POST   /api/v1/contacts/{id}/unblock
//	PUT    /api/v1/contacts/{id}/muted          {"muted": bool}
//	GET    /api/v1/blocked                      blocked accounts
//	DELETE /api/v1/conversations/{id}           local history only; answers {"deleted": n}
func (s *Server) trustRoutes(api func(string, handlerFunc)) {
	api("GET /api/v1/contacts/{id}/safety-number", s.safetyNumber)
	api("PUT /api/v1/contacts/{id}/verified", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		var req struct {
			Verified *bool `json:"verified"`
		}
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		if req.Verified == nil {
			return nil, badRequest(`want {"verified": true} or {"verified": false}`)
		}
		return e.SetVerified(r.PathValue("id"), *req.Verified)
	})
	api("PUT /api/v1/contacts/{id}/muted", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		var req struct {
			Muted *bool `json:"muted"`
		}
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		if req.Muted == nil {
			return nil, badRequest(`want {"muted": true} or {"muted": false}`)
		}
		return e.SetMuted(r.PathValue("id"), *req.Muted)
	})
	api("POST /api/v1/contacts/{id}/block", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return map[string]bool{"ok": true}, e.Block(r.PathValue("id"))
	})
	api("POST /api/v1/contacts/{id}/unblock", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return e.Unblock(r.PathValue("id"))
	})
	api("GET /api/v1/blocked", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return nonNil(e.Blocked())
	})
	api("DELETE /api/v1/conversations/{id}", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		n, err := e.DeleteConversation(r.PathValue("id"))
		return map[string]int{"deleted": n}, err
	})
}

// SafetyNumberAnswer is GET /api/v1/contacts/{id}/safety-number: the
// number, and a QR code of its 60 digits (the same on both sides).
type SafetyNumberAnswer struct {
	*client.SafetyNumber
	QR *QRCode `json:"qr"`
}

func (s *Server) safetyNumber(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	sn, err := e.SafetyNumber(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	q, err := qrOf(sn.Number)
	if err != nil {
		return nil, err
	}
	return SafetyNumberAnswer{SafetyNumber: sn, QR: q}, nil
}
