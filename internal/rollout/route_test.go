package rollout

import (
	"strings"
	"testing"
)

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{`{"id":"a","candidate":"http://c:8080","weight":25,"shadow":true,"stickyHeader":"X-Id","tolerance":0.01}`,
		`{"id":"a"}`, `{"id":"","weight":-1}`, `[]`, `{"id":"a","candidate":"http://%zz"}`, `{"id":"a","tolerance":1e999}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rt, cand, err := ParseRoute(strings.NewReader(string(body)))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if rt.Weight < 0 || rt.Weight > 100 || rt.ID == "" || (rt.Weight > 0 && cand == nil) {
			t.Fatalf("accepted an invalid route %+v", rt)
		}
	})
}
