package loadgen

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTemplateRender(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, out string)
	}{
		{"literal only", `{"a":1}`, func(t *testing.T, out string) {
			if out != `{"a":1}` {
				t.Errorf("got %q", out)
			}
		}},
		{"rand in range", `{"x":{{rand -3 3}}}`, func(t *testing.T, out string) {
			var v struct{ X float64 }
			mustJSON(t, out, &v)
			if v.X < -3 || v.X >= 3 {
				t.Errorf("x = %v, outside [-3, 3)", v.X)
			}
		}},
		{"randint inclusive", `[{{randint 4 5}}, {{ randint -1 -1 }}]`, func(t *testing.T, out string) {
			var v []int
			mustJSON(t, out, &v)
			if v[0] < 4 || v[0] > 5 || v[1] != -1 {
				t.Errorf("got %v", v)
			}
		}},
		{"normal with zero spread is its mean", `{{normal 2.5 0}}`, func(t *testing.T, out string) {
			if out != "2.5" {
				t.Errorf("got %q", out)
			}
		}},
		{"choice", `{{choice "a" "b"}}`, func(t *testing.T, out string) {
			if out != `"a"` && out != `"b"` {
				t.Errorf("got %q", out)
			}
		}},
		{"seq", `{{seq}}`, func(t *testing.T, out string) {
			if out != "7" {
				t.Errorf("got %q", out)
			}
		}},
		{"single braces pass through", `{"a":{"b":[{{randint 1 1}}]}}`, func(t *testing.T, out string) {
			if out != `{"a":{"b":[1]}}` {
				t.Errorf("got %q", out)
			}
		}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := ParseTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 50; i++ {
				tt.check(t, string(tpl.Render(nil, rng, 7)))
			}
		})
	}
}

func TestTemplateVaries(t *testing.T) {
	tpl, err := ParseTemplate(`{{rand 0 1}}`)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		seen[string(tpl.Render(nil, rng, 0))] = true
	}
	if len(seen) < 15 {
		t.Errorf("20 renders gave only %d distinct values", len(seen))
	}
}

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`{{rand 1 2`, "never closed"},
		{`{{}}`, "empty action"},
		{`{{rand 1}}`, "two numbers"},
		{`{{rand 3 1}}`, "below LO"},
		{`{{rand x 1}}`, "finite numbers"},
		{`{{rand 0 Inf}}`, "finite numbers"},
		{`{{randint 1.5 2}}`, "integers"},
		{`{{randint 2 1}}`, "below LO"},
		{`{{randint -9223372036854775808 9223372036854775807}}`, "too wide"},
		{`{{normal 0 -1}}`, "negative"},
		{`{{choice}}`, "at least one"},
		{`{{seq 1}}`, "no arguments"},
		{`{{exec "rm"}}`, "unknown function"},
	}
	for _, tt := range tests {
		_, err := ParseTemplate(tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTemplate(%q) error = %v, want one containing %q", tt.src, err, tt.want)
		}
	}
}

func mustJSON(t *testing.T, s string, into any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), into); err != nil {
		t.Fatalf("%q is not JSON: %v", s, err)
	}
}

// FuzzTemplate: any input either fails to parse with an error or renders
// without panicking; every numeric hole renders a valid JSON number; and the
// literal text between holes comes out exactly as written.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		`{"feature1": {{rand -3 3}}, "feature2": {{randint 0 10}}}`,
		`[{{normal 0 1}},{{choice 1 2 3}},{{seq}}]`,
		`{{`, `}}`, `{{}}`, `{{rand 1e308 1.7e308}}`, `{{normal 1e308 1e308}}`, `{{randint -9223372036854775808 0}}`,
		`{{rand -1.7e308 1.7e308}}`,
	} {
		f.Add(s)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	f.Fuzz(func(t *testing.T, src string) {
		tpl, err := ParseTemplate(src)
		if err != nil {
			return
		}
		_ = tpl.Render(nil, rng, 1)
		var literal strings.Builder
		for _, p := range tpl.parts {
			if p.kind == partLiteral {
				literal.Write(p.literal)
				continue
			}
			if p.kind == partChoice {
				continue
			}
			one := (&Template{parts: []part{p}}).Render(nil, rng, 42)
			if !json.Valid(one) {
				t.Fatalf("%q: hole rendered %q, not a JSON number", src, one)
			}
		}
		if want := stripActions(src); literal.String() != want {
			t.Fatalf("%q: literal text %q, want %q", src, literal.String(), want)
		}
	})
}

// stripActions removes every {{...}} from s, the way the parser should.
func stripActions(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		j := strings.Index(s[i+2:], "}}")
		s = s[i+2+j+2:]
	}
}
