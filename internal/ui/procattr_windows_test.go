//go:build windows

package ui_test

import "syscall"

// daemonProcAttr starts a test daemon in its own process group, out of
// reach of a Ctrl-C meant for `go test`. (These tests drive Debian's
// Chromium and run on Linux; this file only lets them compile here.)
func daemonProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}
