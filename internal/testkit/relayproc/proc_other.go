//go:build !linux

package relayproc

import "syscall"

// dieWithTheParent: only Linux has a parent-death signal.
func dieWithTheParent() *syscall.SysProcAttr { return nil }
