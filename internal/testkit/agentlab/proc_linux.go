package agentlab

import "syscall"

// dieWithTheTest makes a child process get SIGKILL when the test process
// dies (a timed-out test is killed without running its cleanups), so no
// relay or broker outlives it.
func dieWithTheTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
