// Package ui is Umbra's web app: plain HTML, CSS and JavaScript embedded in
// the binary (no build step, no download), served by the daemon on its
// loopback API address. The page itself is public; it reads the daemon's
// token from its URL's fragment (#token=..., which browsers never send to a
// server), keeps it for the tab and sends it as an Authorization header on
// every /api call and as a subprotocol entry on the events WebSocket.
// Messages' files are read the same way into blob: URLs for <img>,
// <audio> and <video>.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// Files is the app's file tree (index.html at its root).
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("ui: embedded static folder missing: " + err.Error())
	}
	return sub
}

// Handler serves the app. Every response forbids framing and loading
// anything from outside the daemon's own address; the page may connect
// only back to it (HTTP and WebSocket).
func Handler() http.Handler {
	files := Files()
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp(r.Host))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		p := path.Clean("/" + r.URL.Path)
		if p == "/" || p == "/index.html" {
			// Served directly: FileServer would redirect /index.html to /.
			serveIndex(w, r, files)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}

func serveIndex(w http.ResponseWriter, r *http.Request, files fs.FS) {
	b, err := fs.ReadFile(files, "index.html")
	if err != nil {
		http.Error(w, "ui: index.html missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// csp allows the page's own scripts, styles, images and media, and connections
// back to the host it was loaded from (its API and events WebSocket).
func csp(host string) string {
	connect := "'self'"
	if validHost(host) {
		connect += " ws://" + host
	}
	// blob: URLs are made by the page itself, of files it read with its
	// token (files.js).
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src blob:; " +
		"connect-src " + connect + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// validHost accepts the host:port forms a loopback daemon is reached by.
func validHost(h string) bool {
	if h == "" || len(h) > 64 {
		return false
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == ':' || c == '[' || c == ']' || c == '-') {
			return false
		}
	}
	return true
}
