package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// takeTerminal makes the demo's own process group the foreground group of
// its terminal and returns what gives the terminal back. Ctrl-C then reaches
// the demo (and the builds it runs) alone: make and go run, which started it,
// would otherwise die of the interrupt too and report "Interrupt" or "Error 1"
// although the demo stopped everything cleanly and exited 0. Without a
// terminal on stdin it does nothing.
func takeTerminal() (restore func()) {
	fd := int(os.Stdin.Fd())
	orig, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || orig != syscall.Getpgrp() {
		return func() {} // no terminal, or the demo runs in the background
	}
	if err := syscall.Setpgid(0, 0); err != nil {
		return func() {}
	}
	// A background group that sets the foreground group gets SIGTTOU.
	signal.Ignore(syscall.SIGTTOU)
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, syscall.Getpgrp()); err != nil {
		return func() {}
	}
	return func() { _ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, orig) }
}
