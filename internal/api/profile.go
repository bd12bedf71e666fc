package api

// Profiles and disappearing-message timers:
//
//	GET  /api/v1/profile                     the user's profile
//	PUT  /api/v1/profile                     {"name": "...", "avatar": base64 image, "clear_avatar": true}
//	PUT  /api/v1/conversations/{id}/timer    {"seconds": 3600} (0: off)
//
// Contacts' profile names and avatars (data: URLs) come with
// GET /api/v1/conversations.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// ProfileJSON is the user's profile as the API shows it.
type ProfileJSON struct {
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
	Avatar    string `json:"avatar,omitempty"` // a data: URL
	Version   uint64 `json:"version"`
}

func profileJSON(e *client.Engine, p *client.Profile) ProfileJSON {
	return ProfileJSON{AccountID: e.AccountID(), Name: p.Name, Avatar: p.AvatarURL(), Version: p.Version}
}

func (s *Server) profileRoutes(api func(string, handlerFunc)) {
	api("GET /api/v1/profile", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		p, err := e.Profile()
		if err != nil {
			return nil, err
		}
		return profileJSON(e, p), nil
	})
	api("PUT /api/v1/profile", s.putProfile)
	api("PUT /api/v1/conversations/{id}/timer", s.putTimer)
}

func (s *Server) putProfile(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Name        *string `json:"name"`
		Avatar      []byte  `json:"avatar"` // base64 in JSON
		ClearAvatar bool    `json:"clear_avatar"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, client.MaxAvatarUpload*4/3+4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest("bad profile: %v (known: name, avatar, clear_avatar)", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	p, err := e.SetProfile(ctx, client.ProfileUpdate{Name: req.Name, Avatar: req.Avatar, ClearAvatar: req.ClearAvatar})
	if err != nil {
		return nil, badRequest("%v", err)
	}
	return profileJSON(e, p), nil
}

func (s *Server) putTimer(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Seconds *int64 `json:"seconds"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	if req.Seconds == nil || *req.Seconds < 0 || *req.Seconds > int64(client.MaxTimer/time.Second) {
		return nil, badRequest("want {\"seconds\": N}: 0 (off) or 5 to %d", int64(client.MaxTimer/time.Second))
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	return e.SetTimer(ctx, r.PathValue("id"), time.Duration(*req.Seconds)*time.Second)
}
