//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package devmode

import "os"

// tryLock cannot lock here: the data folder is not guarded on this system.
func tryLock(*os.File) (bool, error) { return true, nil }
