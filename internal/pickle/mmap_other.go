//go:build !linux && !darwin

package pickle

import "os"

func mapFile(f *os.File, size int64) ([]byte, func(), bool) { return nil, nil, false }
