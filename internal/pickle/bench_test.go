package pickle

import (
	"os"
	"testing"
)

// BenchmarkDecode decodes a 20-tree RandomForestClassifier saved by joblib.dump
// with compress=3: "stream" is the decoder alone on the decompressed stream,
// "file" adds zlib decompression, as Load does.
func BenchmarkDecode(b *testing.B) {
	file, err := os.ReadFile("testdata/forest_20.joblib")
	if err != nil {
		b.Fatal(err)
	}
	stream, err := decompress(file, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Allow: allowAll}
	b.Run("stream", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeBytes(stream, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file", func(b *testing.B) {
		b.SetBytes(int64(len(file)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := LoadBytes(file, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}
