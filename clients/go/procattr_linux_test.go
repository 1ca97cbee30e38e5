package llamactl_test

import "syscall"

// childProcAttr makes a llamactl that the tests start get SIGTERM if the test binary dies
// (a panic, a timeout) before it could stop it: llamactl then stops its instances.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
