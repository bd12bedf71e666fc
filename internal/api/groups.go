package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/umbra-im/umbra/internal/client"
)

// Groups: /api/v1/groups. A group is named in the path by its ID, a
// unique prefix of it (8 hex characters or more) or its name. Reactions,
// edits and deletes of group messages go through /api/v1/messages/{id}/…
// with "with": "group:" + the group's ID; replies through POST
// /api/v1/groups/{id}/messages with "reply_to".
func (s *Server) groupRoutes(api func(string, handlerFunc)) {
	api("GET /api/v1/groups", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return nonNil(e.Groups())
	})
	api("POST /api/v1/groups", s.createGroup)
	api("GET /api/v1/groups/{id}", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return groupAnswer(e.FindGroup(r.PathValue("id")))
	})
	api("PATCH /api/v1/groups/{id}", s.setGroupInfo)
	for _, op := range []string{"add", "remove", "promote", "demote"} {
		api("POST /api/v1/groups/{id}/"+op, s.groupMembers(op))
	}
	api("POST /api/v1/groups/{id}/leave", s.groupAction((*client.Engine).LeaveGroup))
	api("POST /api/v1/groups/{id}/accept", s.groupAction((*client.Engine).AcceptGroup))
	api("POST /api/v1/groups/{id}/decline", s.groupAction((*client.Engine).DeclineGroup))
	api("GET /api/v1/groups/{id}/messages", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		ms, err := e.GroupMessages(r.PathValue("id"))
		if errors.Is(err, client.ErrNoGroup) {
			return nil, &apiError{http.StatusNotFound, err.Error(), "no_group"}
		}
		return nonNil(ms, err)
	})
	api("POST /api/v1/groups/{id}/messages", s.sendGroup)
	api("PUT /api/v1/groups/{id}/avatar", s.putGroupAvatar)
	api("GET /api/v1/groups/{id}/avatar", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		b, mime, err := e.GroupAvatar(r.PathValue("id"))
		if _, err := groupAnswer(nil, err); err != nil {
			return nil, err
		}
		out := map[string]string{}
		if b != nil {
			out["avatar"] = "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b)
		}
		return out, nil
	})
	api("POST /api/v1/groups/{id}/read", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		n, err := e.MarkGroupRead(r.Context(), r.PathValue("id"))
		return map[string]int{"marked": n}, err
	})
}

// groupAnswer maps the engine's "no such group" to 404.
func groupAnswer(g *client.Group, err error) (any, error) {
	if errors.Is(err, client.ErrNoGroup) {
		return nil, &apiError{http.StatusNotFound, err.Error(), "no_group"}
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}

func groupContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}

// createGroup: {"name", "description", "members": [account IDs]}.
func (s *Server) createGroup(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Name        string   `json:"name"`
		Description string   `json:"description"`
		Members     []string `json:"members"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := groupContext(r)
	defer cancel()
	return groupAnswer(e.CreateGroup(ctx, req.Name, req.Description, req.Members))
}

// setGroupInfo: {"name", "description"}; an empty name keeps the old one.
func (s *Server) setGroupInfo(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	g, err := e.FindGroup(r.PathValue("id"))
	if err != nil {
		return groupAnswer(g, err)
	}
	name, desc := g.Name, g.Description
	if req.Name != nil && *req.Name != "" {
		name = *req.Name
	}
	if req.Description != nil {
		desc = *req.Description
	}
	ctx, cancel := groupContext(r)
	defer cancel()
	return groupAnswer(e.SetGroupInfo(ctx, g.ID, name, desc))
}

// groupMembers handles add, remove, promote and demote: {"members": [IDs]}.
func (s *Server) groupMembers(op string) handlerFunc {
	do := map[string]func(*client.Engine, context.Context, string, []string) (*client.Group, error){
		"add": (*client.Engine).AddGroupMembers, "remove": (*client.Engine).RemoveGroupMembers,
		"promote": (*client.Engine).PromoteGroupMembers, "demote": (*client.Engine).DemoteGroupMembers,
	}[op]
	return func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		var req struct {
			Members []string `json:"members"`
		}
		if err := readJSON(r, &req); err != nil {
			return nil, err
		}
		ctx, cancel := groupContext(r)
		defer cancel()
		return groupAnswer(do(e, ctx, r.PathValue("id"), req.Members))
	}
}

// groupAction handles leave, accept and decline (no body).
func (s *Server) groupAction(do func(*client.Engine, context.Context, string) (*client.Group, error)) handlerFunc {
	return func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		ctx, cancel := groupContext(r)
		defer cancel()
		return groupAnswer(do(e, ctx, r.PathValue("id")))
	}
}

// putGroupAvatar sets the group's picture: {"avatar": base64 image} or
// {"clear": true}.
func (s *Server) putGroupAvatar(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Avatar []byte `json:"avatar"`
		Clear  bool   `json:"clear"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 12<<20)).Decode(&req); err != nil {
		return nil, badRequest("bad JSON body: %v", err)
	}
	if !req.Clear && len(req.Avatar) == 0 {
		return nil, badRequest("give an image (\"avatar\", base64) or \"clear\": true")
	}
	if req.Clear {
		req.Avatar = nil
	}
	ctx, cancel := groupContext(r)
	defer cancel()
	return groupAnswer(e.SetGroupAvatar(ctx, r.PathValue("id"), req.Avatar))
}

// sendGroup queues a text for the group: {"text", "reply_to"}. It answers
// at once (state "queued"); events follow the state.
func (s *Server) sendGroup(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	var req struct {
		Text    string `json:"text"`
		ReplyTo string `json:"reply_to"`
	}
	if err := readJSON(r, &req); err != nil {
		return nil, err
	}
	ctx, cancel := groupContext(r)
	defer cancel()
	m, err := e.SendGroup(ctx, r.PathValue("id"), req.Text, req.ReplyTo, false)
	if errors.Is(err, client.ErrNoGroup) {
		return nil, &apiError{http.StatusNotFound, err.Error(), "no_group"}
	}
	return opError(m, err)
}
