package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// otherPort is a port that is not s's.
func otherPort(s *Server) string { return strconv.Itoa(s.port()%60000 + 1) }

// TestHostHeaderChecked: a request naming another host, even one that
// resolves to 127.0.0.1 (DNS rebinding), is refused before anything else,
// the web app's files included; the listener's own names are accepted.
func TestHostHeaderChecked(t *testing.T) {
	s, _ := engineServer(t)
	s.UI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("the app")) })
	port := strconv.Itoa(s.port())
	for _, host := range []string{
		"rebind.attacker.example:" + port, "rebind.attacker.example", "127.0.0.1:" + otherPort(s),
		"127.0.0.1", "localhost", "127.0.0.2:" + port, "unspecified.invalid:" + port, "[::ffff:127.0.0.1]:" + port,
		"127.0.0.1:" + port + ".attacker.example", "",
	} {
		for _, path := range []string{"/api/v1/me", "/", "/api/v1/events"} {
			req := newRequest(t, s, s.Token(), http.MethodGet, path, nil)
			req.Host = host
			if rec := serve(s, req); rec.Code != http.StatusMisdirectedRequest {
				t.Errorf("Host %q, GET %s: %d, want 421", host, path, rec.Code)
			}
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost:" + port, "[::1]:" + port} {
		req := newRequest(t, s, s.Token(), http.MethodGet, "/api/v1/me", nil)
		req.Host = host
		if rec := serve(s, req); rec.Code != http.StatusOK {
			t.Errorf("Host %q: %d %s, want 200", host, rec.Code, rec.Body)
		}
	}
	// Without a listener there is no host to accept.
	bare := NewServer(nil, quiet())
	req := newRequest(t, s, bare.Token(), http.MethodGet, "/api/v1/account", nil)
	if code := serve(bare, req).Code; code != http.StatusMisdirectedRequest {
		t.Errorf("a server that never listened answered %d, want 421", code)
	}
}

// TestTokenNeverFromURL: ?token= authenticates no route, alone or with a
// wrong header.
func TestTokenNeverFromURL(t *testing.T) {
	s, _ := engineServer(t)
	for _, path := range []string{"/api/v1/account", "/api/v1/me", "/api/v1/contacts", "/api/v1/events", "/api/v1/nothing"} {
		req := newRequest(t, s, "", http.MethodGet, path+"?token="+s.Token(), nil)
		if rec := serve(s, req); rec.Code != http.StatusUnauthorized {
			t.Errorf("GET %s?token=: %d, want 401", path, rec.Code)
		}
		req = newRequest(t, s, "wrong", http.MethodGet, path+"?token="+s.Token(), nil)
		if rec := serve(s, req); rec.Code != http.StatusUnauthorized {
			t.Errorf("GET %s?token= with a wrong header: %d, want 401", path, rec.Code)
		}
	}
	req := newRequest(t, s, "", http.MethodPost, "/api/v1/contacts?access_token="+s.Token(), map[string]string{"id": "x"})
	if rec := serve(s, req); rec.Code != http.StatusUnauthorized {
		t.Errorf("POST with ?access_token=: %d, want 401", rec.Code)
	}
}

// TestTokenHeaderForms: the bearer header in its usual spellings works;
// other schemes and a token in other headers do not.
func TestTokenHeaderForms(t *testing.T) {
	s, _ := engineServer(t)
	for hdr, want := range map[string]int{
		"Bearer " + s.Token():                  http.StatusOK,
		"bearer " + s.Token():                  http.StatusOK,
		"Bearer  " + s.Token() + " ":           http.StatusOK,
		"Basic " + s.Token():                   http.StatusUnauthorized,
		s.Token():                              http.StatusUnauthorized,
		"Bearer " + s.Token()[:10]:             http.StatusUnauthorized,
		"Bearer " + s.Token() + "00":           http.StatusUnauthorized,
		"Bearer " + strings.ToUpper(s.Token()): http.StatusUnauthorized,
	} {
		req := newRequest(t, s, "", http.MethodGet, "/api/v1/me", nil)
		req.Header.Set("Authorization", hdr)
		if rec := serve(s, req); rec.Code != want {
			t.Errorf("Authorization %.20q...: %d, want %d", hdr, rec.Code, want)
		}
	}
	// A subprotocol token counts only on a WebSocket handshake.
	req := newRequest(t, s, "", http.MethodGet, "/api/v1/me", nil)
	req.Header.Set("Sec-WebSocket-Protocol", wsProtocol+", "+wsTokenPrefix+s.Token())
	if rec := serve(s, req); rec.Code != http.StatusUnauthorized {
		t.Errorf("subprotocol token on a plain request: %d, want 401", rec.Code)
	}
}

// TestSessionCookie: POST /api/v1/session sets an HttpOnly, SameSite=Strict
// cookie for the whole site that then authenticates requests, except those
// the browser marks as coming from another page; DELETE clears it.
func TestSessionCookie(t *testing.T) {
	s, _ := engineServer(t)
	if code, _ := call(t, s, "", http.MethodPost, "/api/v1/session", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("session without the token: %d, want 401", code)
	}
	rec := serve(s, newRequest(t, s, s.Token(), http.MethodPost, "/api/v1/session", nil))
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusOK || len(cookies) != 1 {
		t.Fatalf("session: %d with cookies %v", rec.Code, cookies)
	}
	c := cookies[0]
	if c.Name != s.CookieName() || c.Value != s.Token() || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge != 0 {
		t.Errorf("cookie %+v: want %s=token, HttpOnly, SameSite=Strict, Path=/, a session cookie", c, s.CookieName())
	}
	if !strings.Contains(s.CookieName(), strconv.Itoa(s.port())) {
		t.Errorf("cookie name %q does not name the port: two daemons in one browser would clash", s.CookieName())
	}
	withCookie := func(method, path, site, value string) int {
		req := newRequest(t, s, "", method, path, nil)
		req.AddCookie(&http.Cookie{Name: s.CookieName(), Value: value})
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		return serve(s, req).Code
	}
	for site, want := range map[string]int{"": 200, "same-origin": 200, "none": 200, "same-site": 403, "cross-site": 403} {
		if code := withCookie(http.MethodGet, "/api/v1/me", site, s.Token()); code != want {
			t.Errorf("cookie with Sec-Fetch-Site %q: %d, want %d", site, code, want)
		}
	}
	if code := withCookie(http.MethodGet, "/api/v1/me", "same-origin", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong cookie: %d, want 401", code)
	}
	// Another daemon's cookie (another port) is not ours.
	req := newRequest(t, s, "", http.MethodGet, "/api/v1/me", nil)
	req.AddCookie(&http.Cookie{Name: "umbra_token_" + otherPort(s), Value: s.Token()})
	if rec := serve(s, req); rec.Code != http.StatusUnauthorized {
		t.Errorf("a cookie of another port: %d, want 401", rec.Code)
	}
	rec = serve(s, newRequest(t, s, s.Token(), http.MethodDelete, "/api/v1/session", nil))
	if cs := rec.Result().Cookies(); rec.Code != http.StatusOK || len(cs) != 1 || cs[0].MaxAge >= 0 || cs[0].Value != "" {
		t.Errorf("DELETE session: %d, cookies %v; want the cookie expired", rec.Code, cs)
	}
}

// TestOriginChecked: a request from another web page (another site, another
// port, a sandboxed page, https) is refused, even with the right token; the
// daemon's own origins are accepted.
func TestOriginChecked(t *testing.T) {
	s, _ := engineServer(t)
	port := strconv.Itoa(s.port())
	for _, origin := range []string{"http://attacker.example", "http://127.0.0.1:" + otherPort(s), "null",
		"https://127.0.0.1:" + port, "http://127.0.0.1:" + port + ".attacker.example", "http://127.0.0.1", "file://"} {
		for _, m := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			req := newRequest(t, s, s.Token(), m, "/api/v1/contacts", map[string]string{"id": "x"})
			req.Header.Set("Origin", origin)
			if rec := serve(s, req); rec.Code != http.StatusForbidden {
				t.Errorf("%s with Origin %q: %d, want 403", m, origin, rec.Code)
			}
		}
	}
	friend, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, origin := range []string{"http://127.0.0.1:" + port, "http://localhost:" + port, "http://[::1]:" + port} {
		req := newRequest(t, s, s.Token(), http.MethodPost, "/api/v1/contacts", map[string]string{"id": friend.ID().String(), "name": fmt.Sprint("f", i)})
		req.Header.Set("Origin", origin)
		if rec := serve(s, req); rec.Code != http.StatusOK {
			t.Errorf("POST with Origin %q: %d %s, want 200", origin, rec.Code, rec.Body)
		}
	}
}

// serveForTest runs s on its listener until the test ends.
func serveForTest(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the server did not stop within 10 s")
		}
	})
}

// TestWebSocketAuth dials the events WebSocket of a running server: the
// token in a subprotocol entry or in the session cookie opens it (and the
// server selects "umbra", never echoing the token); the URL, a missing or
// wrong token, another Origin and another Host do not.
func TestWebSocketAuth(t *testing.T) {
	s, e := engineServer(t)
	serveForTest(t, s)
	port := strconv.Itoa(s.port())
	wsURL := "ws://127.0.0.1:" + port + "/api/v1/events"
	origin := "http://127.0.0.1:" + port
	dial := func(url string, h http.Header) (*websocket.Conn, *http.Response, error) {
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		if h.Get("Sec-WebSocket-Protocol") != "" {
			d.Subprotocols = strings.Split(h.Get("Sec-WebSocket-Protocol"), ", ")
			h.Del("Sec-WebSocket-Protocol")
		}
		return d.Dial(url, h)
	}
	refused := []struct {
		name string
		url  string
		h    http.Header
		code int
	}{
		{"no token", wsURL, http.Header{"Origin": {origin}}, 401},
		{"?token=", wsURL + "?token=" + s.Token(), http.Header{"Origin": {origin}}, 401},
		{"wrong subprotocol token", wsURL, http.Header{"Origin": {origin}, "Sec-WebSocket-Protocol": {wsProtocol + ", " + wsTokenPrefix + "wrong"}}, 401},
		{"another origin", wsURL, http.Header{"Origin": {"http://attacker.example"}, "Sec-WebSocket-Protocol": {wsProtocol + ", " + wsTokenPrefix + s.Token()}}, 403},
		{"another host", wsURL, http.Header{"Host": {"rebind.attacker.example:" + port}, "Sec-WebSocket-Protocol": {wsProtocol + ", " + wsTokenPrefix + s.Token()}}, 421},
		{"cookie from another site", wsURL, http.Header{"Cookie": {s.CookieName() + "=" + s.Token()}, "Sec-Fetch-Site": {"cross-site"}}, 403},
	}
	for _, tc := range refused {
		conn, resp, err := dial(tc.url, tc.h)
		if err == nil {
			conn.Close()
			t.Errorf("%s: the WebSocket opened", tc.name)
			continue
		}
		if resp == nil || resp.StatusCode != tc.code {
			t.Errorf("%s: %v (response %v), want %d", tc.name, err, resp, tc.code)
		}
	}

	friend, err := identity.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddContact(friend.ID().String(), "friend"); err != nil {
		t.Fatal(err)
	}
	accepted := []struct {
		name string
		h    http.Header
	}{
		{"subprotocol", http.Header{"Origin": {origin}, "Sec-WebSocket-Protocol": {wsProtocol + ", " + wsTokenPrefix + s.Token()}}},
		{"cookie", http.Header{"Origin": {origin}, "Cookie": {s.CookieName() + "=" + s.Token()}, "Sec-Fetch-Site": {"same-origin"}}},
	}
	for i, tc := range accepted {
		conn, resp, err := dial(wsURL, tc.h)
		if err != nil {
			t.Errorf("%s: %v (response %v)", tc.name, err, resp)
			continue
		}
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); tc.name == "subprotocol" && got != wsProtocol {
			t.Errorf("%s: server selected subprotocol %q, want %q", tc.name, got, wsProtocol)
		}
		if strings.Contains(fmt.Sprint(resp.Header), s.Token()) {
			t.Errorf("%s: the handshake answer carries the token", tc.name)
		}
		if err := awaitEvent(conn, e, friend.ID().String(), i); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		conn.Close()
	}
}

// awaitEvent renames the contact until the WebSocket delivers one of the
// contact events this causes (the server subscribes just after the
// handshake), for up to 10 s. The caller closes conn, which ends the reader.
func awaitEvent(conn *websocket.Conn, e *client.Engine, id string, round int) error {
	events := make(chan client.Event, 64)
	go func() {
		defer close(events)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var ev client.Event
			if json.Unmarshal(b, &ev) == nil {
				select {
				case events <- ev:
				default:
				}
			}
		}
	}()
	names := map[string]bool{}
	rename := func() error {
		name := fmt.Sprintf("friend-%d-%d", round, len(names))
		names[name] = true
		_, err := e.RenameContact(id, name)
		return err
	}
	if err := rename(); err != nil {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return errors.New("the WebSocket closed before an event arrived")
			}
			if ev.Type == client.EventContact && ev.Contact != nil && names[ev.Contact.Name] {
				return nil
			}
		case <-tick.C:
			if err := rename(); err != nil {
				return err
			}
		case <-timeout.C:
			return errors.New("no event within 10 s")
		}
	}
}
