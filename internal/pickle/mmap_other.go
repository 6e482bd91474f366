//go:build !linux && !darwin

package pickle

import (
	"os"

	"github.com/tideserve/tide/internal/loadpace"
)

func mapFile(f *os.File, size int64, pace *loadpace.Pacer) ([]byte, func(), bool) {
	return nil, nil, false
}
