//go:build windows

package devnet

import "syscall"

// nodeProcAttr starts a node in its own process group, so that a Ctrl-C
// in the console reaches the devnet alone, which then stops its nodes.
func nodeProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// Windows has no stop and continue signals: Pause and Resume fail there
// (os.Process.Signal refuses every signal but Kill).
const sigStop, sigCont = syscall.Signal(19), syscall.Signal(18)
