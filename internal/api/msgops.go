package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// Conversation actions: reactions, edits, deletes and typing indicators.
// Each names the conversation ("with": an account ID) and the message by
// its ID or a unique prefix of it (at least client.MinIDPrefix hex
// characters). Replies go through POST /api/v1/messages with "reply_to".
func (s *Server) msgopsRoutes(api func(string, handlerFunc)) {
	api("POST /api/v1/messages/{id}/react", s.react)
	api("POST /api/v1/messages/{id}/edit", s.edit)
	api("POST /api/v1/messages/{id}/delete", s.deleteMessage)
	api("POST /api/v1/typing", s.typing)
}

// opError maps the engine's "no such message" to 404.
func opError(m *client.Message, err error) (any, error) {
	if errors.Is(err, client.ErrNoMessage) {
		return nil, &apiError{http.StatusNotFound, err.Error(), "no_message"}
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func opContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}

// react sets or ({"emoji": ""}) takes back our reaction: {"with", "emoji"}.
func (s *Server) react(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		With  string `json:"with"`
		Emoji string `json:"emoji"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := opContext(r)
	defer cancel()
	return opError(e.React(ctx, req.With, r.PathValue("id"), req.Emoji))
}

// edit replaces the text of one of our messages: {"with", "text"}.
func (s *Server) edit(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		With string `json:"with"`
		Text string `json:"text"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := opContext(r)
	defer cancel()
	return opError(e.Edit(ctx, req.With, r.PathValue("id"), req.Text))
}

// deleteMessage deletes a message here, or with "everyone" one of ours for
// both sides: {"with", "everyone"}. It answers the message as it was (for
// me) or is now (for everyone).
func (s *Server) deleteMessage(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		With     string `json:"with"`
		Everyone bool   `json:"everyone"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := opContext(r)
	defer cancel()
	return opError(e.Delete(ctx, req.With, r.PathValue("id"), req.Everyone))
}

// typing tells a contact we started or stopped typing: {"with", "typing"}.
// It answers {"sent": false} when typing indicators are off.
func (s *Server) typing(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		With   string `json:"with"`
		Typing bool   `json:"typing"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := opContext(r)
	defer cancel()
	sent, err := e.SendTyping(ctx, req.With, req.Typing)
	return map[string]bool{"sent": sent}, err
}
