//go:build unix

package devnet

import "syscall"

// nodeProcAttr starts a node in its own process group, so that a Ctrl-C
// at the terminal reaches the devnet alone, which then stops its nodes.
func nodeProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// Pause and Resume signals.
const sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT
