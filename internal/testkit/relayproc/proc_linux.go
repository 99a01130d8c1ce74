package relayproc

import "syscall"

// dieWithTheParent makes the relay get SIGKILL when the process that
// started it dies (a timed-out test is killed without running its
// cleanups), so no relay outlives it.
func dieWithTheParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
