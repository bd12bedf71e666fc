package api

// Who may talk to the local API. Three checks, in this order:
//
//  1. Host: every request (the web app's files too) must name the
//     listener itself, as 127.0.0.1:PORT, localhost:PORT or [::1]:PORT.
//     A page on another name that resolves to 127.0.0.1 (DNS rebinding)
//     sends its own name and is refused with 421.
//  2. Origin: when a request carries one, it must be http:// and one of the
//     same hosts; anything else (another site, another local port, a
//     sandboxed "null" origin) is refused with 403. Browsers send Origin on
//     every WebSocket handshake and on every request that changes state.
//  3. The token, from exactly one of: the Authorization: Bearer header; the
//     umbra_token_PORT cookie (HttpOnly, SameSite=Strict, Path=/), set by
//     POST /api/v1/session; or, on the events WebSocket only, a
//     Sec-WebSocket-Protocol entry "umbra.token.TOKEN" next to "umbra"
//     (browsers cannot set headers on a WebSocket). Never from the URL:
//     a query string ends up in logs, history and Referer headers.
//
// Cookies are not isolated by port: the browser also sends the cookie to
// other servers on 127.0.0.1. A request authenticated by the cookie is
// therefore refused when the browser marks it as coming from another page
// (Sec-Fetch-Site other than same-origin or none), and the web app itself
// uses the header and the subprotocol, not the cookie.

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"strings"
)

const (
	// wsProtocol is the events WebSocket's subprotocol; the server selects
	// it, never the token entry.
	wsProtocol = "umbra"
	// wsTokenPrefix marks the token among the offered subprotocols.
	wsTokenPrefix = "umbra.token."
)

// hostsFor is the set of Host values (and, with http://, Origins) that name
// a loopback listener on port.
func hostsFor(port int) map[string]bool {
	p := strconv.Itoa(port)
	return map[string]bool{"127.0.0.1:" + p: true, "localhost:" + p: true, "[::1]:" + p: true}
}

// port is the listener's port, or 0 before Listen.
func (s *Server) port() int {
	if s.l == nil {
		return 0
	}
	if a, ok := s.l.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// hostOK reports whether host names this server.
func (s *Server) hostOK(host string) bool {
	return s.hosts[strings.ToLower(host)]
}

// originOK reports whether r carries no Origin or one of this server's own.
func (s *Server) originOK(r *http.Request) bool {
	o, ok := r.Header["Origin"]
	if !ok {
		return true
	}
	if len(o) != 1 {
		return false
	}
	host, found := strings.CutPrefix(strings.ToLower(o[0]), "http://")
	return found && s.hostOK(host)
}

// guard applies the Host and Origin checks to every request.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostOK(r.Host) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{
				"error": "this Umbra daemon answers only as 127.0.0.1, localhost or [::1] on its own port"})
			return
		}
		if !s.originOK(r) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "requests from other web pages are refused"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// CookieName is the session cookie's name: per port, so that two daemons
// in one browser do not overwrite each other's cookie.
func (s *Server) CookieName() string { return "umbra_token_" + strconv.Itoa(s.port()) }

// tokenOf finds the token r carries and how: "header", "cookie" or
// "subprotocol" (WebSocket handshakes only). It never reads the URL.
func (s *Server) tokenOf(r *http.Request) (tok, how string) {
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, t, _ := strings.Cut(a, " ")
		if strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(t), "header"
		}
		return "", "header"
	}
	if isWebSocket(r) {
		for _, p := range subprotocols(r) {
			if t, ok := strings.CutPrefix(p, wsTokenPrefix); ok {
				return t, "subprotocol"
			}
		}
	}
	if c, err := r.Cookie(s.CookieName()); err == nil {
		return c.Value, "cookie"
	}
	return "", ""
}

// auth checks the token (see the top of this file).
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, how := s.tokenOf(r)
		if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{
				"error": "missing or wrong token: send it as 'Authorization: Bearer TOKEN' (see the daemon's daemon.json)"})
			return
		}
		if how == "cookie" {
			switch r.Header.Get("Sec-Fetch-Site") {
			case "", "same-origin", "none":
			default:
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "the session cookie is refused on requests from other web pages"})
				return
			}
		}
		h(w, r)
	}
}

// session exchanges the bearer token for the session cookie (POST), or
// clears the cookie (DELETE), for clients that cannot set a header.
func (s *Server) session(w http.ResponseWriter, r *http.Request) (any, error) {
	c := &http.Cookie{Name: s.CookieName(), Value: s.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if r.Method == http.MethodDelete {
		c.Value, c.MaxAge = "", -1
	}
	http.SetCookie(w, c)
	return map[string]bool{"ok": true}, nil
}

func isWebSocket(r *http.Request) bool {
	return headerHas(r.Header, "Connection", "upgrade") && headerHas(r.Header, "Upgrade", "websocket")
}

// headerHas reports whether the comma-separated header name lists token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h[http.CanonicalHeaderKey(name)] {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// subprotocols lists the WebSocket subprotocols r offers, over every
// Sec-WebSocket-Protocol header line.
func subprotocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header[http.CanonicalHeaderKey("Sec-WebSocket-Protocol")] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
