package pickle

import (
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// Every strict prefix of a fixture is an incomplete stream (the STOP opcode, or
// the compressed stream's end, is its last byte), so each must fail cleanly.
// TestMain turns panics back on, so a missing length check fails here.
func TestTruncatedFixtures(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			// Every prefix of the files up to 6 KB; an even
			// sample of 1500 prefixes of the larger ones, 200 with -short.
			step := 1
			if len(data) > 6<<10 {
				step = len(data) / 1500
			}
			if testing.Short() {
				step = max(1, len(data)/200)
			}
			for n := 0; n < len(data); n += step {
				if v, err := LoadBytes(data[:n], Options{Allow: allowAll}); err == nil {
					t.Fatalf("prefix of %d/%d bytes decoded to a %s", n, len(data), TypeName(v))
				}
			}
		})
	}
}

// Flipped bits must never crash the decoder. Pickles carry no checksum, so a flip
// inside array data or a string legitimately decodes to a different value; the
// compressed containers' checksums catch most flips.
func TestBitFlippedFixtures(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	total, failed := 0, 0
	for _, path := range fixtureFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(data))
		for i := 0; i < 300; i++ {
			copy(buf, data)
			pos := rng.Intn(len(buf))
			buf[pos] ^= 1 << rng.Intn(8)
			total++
			if _, err := LoadBytes(buf, Options{Allow: allowAll, MaxBytes: 64 << 20}); err != nil {
				failed++
			}
		}
	}
	t.Logf("%d bit flips, %d rejected, %d decoded to some value, none crashed", total, failed, total-failed)
}
