package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/files"
)

// fileRoutes: send a file (multipart), ask for a received one, read one.
func (s *Server) fileRoutes(api func(string, handlerFunc)) {
	api("POST /api/v1/files", s.sendFile)
	api("POST /api/v1/messages/{id}/download", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return opError(e.Download(r.PathValue("id")))
	})
	api("GET /api/v1/messages/{id}/file", s.readFile)
	api("GET /api/v1/messages/{id}", func(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
		return opError(e.Message(r.URL.Query().Get("with"), r.PathValue("id")))
	})
}

// sendFile takes a multipart form: the fields to (an account ID, or
// "group:" and a group), caption, name, type, width, height, duration
// (ms) and a part thumb (the thumbnail's bytes), then the part file (the
// file itself, last: it is streamed into the home as it comes).
func (s *Server) sendFile(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	r.Body = http.MaxBytesReader(w, r.Body, files.MaxFileSize+client.MaxThumb+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, badRequest("send a file as multipart/form-data: %v", err)
	}
	var to, caption string
	var meta client.FileMeta
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, badRequest("no part named file in the form")
		}
		if err != nil {
			return nil, badRequest("bad form: %v", err)
		}
		name := p.FormName()
		if name == "file" {
			if meta.Name == "" {
				meta.Name = p.FileName()
			}
			if meta.Type == "" {
				if t, _, err := mime.ParseMediaType(p.Header.Get("Content-Type")); err == nil && t != "application/octet-stream" {
					meta.Type = t
				}
			}
			if to == "" {
				return nil, badRequest("the form names no recipient (to)")
			}
			return opError(e.SendFile(r.Context(), to, p, meta, caption))
		}
		limit := int64(client.MaxTextBytes)
		if name == "thumb" {
			limit = client.MaxThumb
		}
		v, err := io.ReadAll(io.LimitReader(p, limit+1))
		if err != nil {
			return nil, badRequest("bad form: %v", err)
		}
		if int64(len(v)) > limit {
			return nil, badRequest("form field %s is too long", name)
		}
		num := func() (int, error) {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return 0, badRequest("form field %s is not a number", name)
			}
			return n, nil
		}
		switch name {
		case "to":
			to = string(v)
		case "caption":
			caption = string(v)
		case "name":
			meta.Name = string(v)
		case "type":
			meta.Type = string(v)
		case "thumb":
			meta.Thumb = v
		case "width":
			meta.Width, err = num()
		case "height":
			meta.Height, err = num()
		case "duration":
			var d int
			d, err = num()
			meta.Duration = int64(d)
		}
		if err != nil {
			return nil, err
		}
	}
}

// readFile serves a message's file. Media the browser shows safely
// (images other than SVG, audio, video) are served inline; everything
// else as a download. Nothing served runs in the UI's origin: the answer
// is sandboxed and its type never sniffed.
func (s *Server) readFile(e *client.Engine, w http.ResponseWriter, r *http.Request) (any, error) {
	f, a, err := e.OpenFile(r.PathValue("id"))
	if err != nil {
		return nil, &apiError{http.StatusNotFound, err.Error(), "no_file"}
	}
	typ := a.Type
	inline := (strings.HasPrefix(typ, "image/") && !strings.Contains(typ, "svg")) ||
		strings.HasPrefix(typ, "audio/") || strings.HasPrefix(typ, "video/")
	disp := "attachment"
	if inline && r.URL.Query().Get("download") == "" {
		disp = "inline"
	} else if !inline {
		typ = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", typ)
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": a.Name}))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, max-age=3600")
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil, nil
}
