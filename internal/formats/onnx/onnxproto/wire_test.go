package onnxproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func key(num, wire int) []byte { return binary.AppendUvarint(nil, uint64(num<<3|wire)) }

// TestForEachField reads every wire type, packed and unpacked repeated fields
// alike, and refuses truncated or malformed messages.
func TestForEachField(t *testing.T) {
	var msg []byte
	msg = binary.AppendUvarint(append(msg, key(1, WireVarint)...), 300)
	msg = binary.AppendUvarint(append(msg, key(1, WireBytes)...), 3) // packed 1, 2, 3
	msg = append(msg, 1, 2, 3)
	msg = binary.LittleEndian.AppendUint32(append(msg, key(2, WireFixed32)...), 7)
	msg = binary.LittleEndian.AppendUint64(append(msg, key(3, WireFixed64)...), 9)
	msg = append(append(msg, key(4, WireBytes)...), 2, 'h', 'i')
	var ints []uint64
	var f32 []uint32
	var f64 []uint64
	var s []byte
	err := ForEachField(msg, func(f Field) error {
		var err error
		switch f.Number {
		case 1:
			ints, err = f.Varints(ints)
		case 2:
			f32, err = f.Fixed32s(f32)
		case 3:
			f64, err = f.Fixed64s(f64)
		case 4:
			s, err = f.Message()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ints, []uint64{300, 1, 2, 3}) || !reflect.DeepEqual(f32, []uint32{7}) || !reflect.DeepEqual(f64, []uint64{9}) || string(s) != "hi" {
		t.Fatalf("read %v %v %v %q", ints, f32, f64, s)
	}
	for name, bad := range map[string][]byte{
		"truncated bytes":   append(key(4, WireBytes), 5, 'x'),
		"truncated fixed64": append(key(3, WireFixed64), 1, 2),
		"field number 0":    {0, 1},
		"wire type 3":       key(1, 3),
		"bad varint":        append(key(1, WireVarint), 0x80),
	} {
		if err := ForEachField(bad, func(Field) error { return nil }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := ForEachField(append(key(4, WireVarint), 1), func(f Field) error { _, err := f.Message(); return err }); err == nil || !strings.Contains(err.Error(), "want a length-delimited field") {
		t.Errorf("a varint read as a message: %v", err)
	}
}

// TestScanFields: the streaming reader offers length-delimited fields, skips
// the rest, and reports a message cut short.
func TestScanFields(t *testing.T) {
	var msg []byte
	msg = binary.AppendUvarint(append(msg, key(1, WireVarint)...), 300)
	msg = append(append(msg, key(2, WireBytes)...), 3, 'a', 'b', 'c')
	msg = binary.LittleEndian.AppendUint32(append(msg, key(3, WireFixed32)...), 7)
	msg = append(append(msg, key(4, WireBytes)...), 2, 'h', 'i')
	var got []string
	r := bufio.NewReader(bytes.NewReader(msg))
	err := ScanFields(r, func(num, wire int, length uint64) (bool, error) {
		if num != 4 {
			return false, nil // skipped
		}
		b := make([]byte, length)
		_, err := io.ReadFull(r, b)
		got = append(got, string(b))
		return true, err
	})
	if err != nil || !reflect.DeepEqual(got, []string{"hi"}) {
		t.Fatalf("read %q, %v", got, err)
	}
	cut := bufio.NewReader(bytes.NewReader(msg[:len(msg)-1]))
	if err := ScanFields(cut, func(int, int, uint64) (bool, error) { return false, nil }); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut message: %v", err)
	}
}
