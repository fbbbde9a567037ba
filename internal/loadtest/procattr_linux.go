package loadtest

import "syscall"

// sysProcAttr makes a started process die with the load tool, however it
// ends (kill -9 too): nothing it started outlives it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
