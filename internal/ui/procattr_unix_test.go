//go:build unix

package ui_test

import "syscall"

// daemonProcAttr starts a test daemon in its own process group, out of
// reach of a Ctrl-C meant for `go test`.
func daemonProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
