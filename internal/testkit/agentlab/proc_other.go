//go:build !linux

package agentlab

import "syscall"

// dieWithTheTest: only Linux has a parent-death signal.
func dieWithTheTest() *syscall.SysProcAttr { return nil }
