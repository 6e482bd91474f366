package server

import (
	"strings"
	"testing"
)

// acceptRequestID is the id requestIDHeader keeps or makes for a client's one.
func acceptRequestID(given string) string { return requestIDHeader([]string{given}, nil)[0] }

func TestAcceptRequestID(t *testing.T) {
	for _, given := range []string{"abc", "req-7", "4bf92f35-77b3-4da6", strings.Repeat("x", 128)} {
		if got := acceptRequestID(given); got != given {
			t.Errorf("acceptRequestID(%q) = %q, want it kept", given, got)
		}
	}
	// Hostile or careless ids are replaced, never echoed into logs and spans.
	for _, given := range []string{"", strings.Repeat("x", 129), "a b", "line\nbreak", "tab\there", "é", "\x00", "\x7f"} {
		got := acceptRequestID(given)
		if got == given || len(got) != 16 || strings.Trim(got, "0123456789abcdef") != "" {
			t.Errorf("acceptRequestID(%q) = %q, want a new 16-digit hex id", given, got)
		}
	}
	if a, b := newRequestID(), newRequestID(); a == b {
		t.Fatalf("two new ids are the same: %s", a)
	}
}

func FuzzAcceptRequestID(f *testing.F) {
	for _, s := range []string{"", "req-1", "a\nb", strings.Repeat("z", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, given string) {
		got := acceptRequestID(given)
		if len(got) == 0 || len(got) > maxRequestIDLen {
			t.Fatalf("id of %d bytes", len(got))
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x21 || got[i] > 0x7e {
				t.Fatalf("id %q has byte %#x", got, got[i])
			}
		}
	})
}
