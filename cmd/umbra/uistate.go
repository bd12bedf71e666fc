package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/fsutil"
)

// defaultUI is the daemon's --ui default: a loopback port of the system's
// choosing at the first start, the same one at the next (see listenUI).
const defaultUI = "127.0.0.1:0"

// uiState is HOME/ui.json: what the daemon keeps from one start to the
// next so that a browser tab left open on its web UI reconnects.
type uiState struct {
	// Port is the port the daemon chose when started without one.
	Port int `json:"port,omitempty"`
	// Token is the API's bearer token (secret: the file is mode 0600).
	Token string `json:"token,omitempty"`
}

// readUIState reads HOME/ui.json; a missing or unreadable file is an empty
// state. A token in a file that others may read (group or world bits set,
// on Unix) is dropped: it may have leaked, so the daemon makes a new one.
func readUIState(home string) (st uiState, dropped bool) {
	path := filepath.Join(home, client.UIFile)
	fi, err := os.Stat(path)
	if err != nil {
		return uiState{}, false
	}
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &st) != nil {
		return uiState{}, false
	}
	if st.Port < 0 || st.Port > 65535 {
		st.Port = 0
	}
	if !api.ValidToken(st.Token) {
		st.Token = ""
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 && st.Token != "" {
		st.Token, dropped = "", true
	}
	return st, dropped
}

func writeUIState(home string, st uiState) error {
	b, _ := json.Marshal(st)
	return fsutil.WriteFileAtomic(filepath.Join(home, client.UIFile), b, 0o600)
}

// listenUI binds srv for the daemon of home and gives it the token kept
// there. listen is --ui: with an explicit port, that port; with port 0 (the
// default), the port remembered in HOME/ui.json if it is free, else a new
// one, remembered for the next start. movedFrom is the remembered port
// that was taken (0 if none). The host is listen's either way (srv.Listen
// accepts only loopback addresses).
func listenUI(srv *api.Server, home, listen string, log *slog.Logger) (movedFrom int, err error) {
	if listen == "" {
		listen = defaultUI
	}
	st, dropped := readUIState(home)
	if dropped {
		log.Warn("the web UI's token file could be read by other users: a new token replaces it (open the new web UI address)", "file", filepath.Join(home, client.UIFile))
	}
	if st.Token != "" {
		if err := srv.SetToken(st.Token); err != nil {
			return 0, err
		}
	}
	st.Token = srv.Token()
	host, port, err := net.SplitHostPort(listen)
	remember := err == nil && port == "0"
	switch {
	case remember && st.Port != 0:
		if err = srv.Listen(net.JoinHostPort(host, strconv.Itoa(st.Port))); err != nil {
			movedFrom = st.Port
			err = srv.Listen(listen)
		}
	default:
		err = srv.Listen(listen)
	}
	if err != nil {
		return 0, err
	}
	if remember {
		st.Port = srv.Port()
	}
	if err := writeUIState(home, st); err != nil {
		return 0, fmt.Errorf("write %s: %w", client.UIFile, err)
	}
	return movedFrom, nil
}
