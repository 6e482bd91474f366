package doctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitCommands(t *testing.T) {
	cs := splitCommands([]string{
		"$ curl -s localhost:8080/predict -d '{\"a\": 1,",
		"    \"b\": 2}'",
		`{"prediction":[0]}`,
		"",
		"$ echo a \\",
		"  b",
		"a b",
	}, true, 10)
	if len(cs) != 2 || cs[0].Line != 10 || !strings.Contains(cs[0].Text, "\"b\": 2}'") || len(cs[0].Want) != 1 || cs[1].Text != "echo a \\\n  b" || cs[1].Want[0] != "a b" {
		t.Fatalf("%+v", cs)
	}
	if _, miss := Missing([]string{"time=… msg=serving addr=[::]:8080 models=[fraud]", "x"}, "time=1 msg=serving addr=[::]:8080 models=[fraud]\ny\nx"); miss {
		t.Error("an elided line did not match")
	}
	if _, miss := Missing([]string{"NAME READY AGE", "fraud-tide 2/2 …"}, "NAME         READY   AGE\nfraud-tide   2/2     5s"); miss {
		t.Error("a table's spacing mattered")
	}
	if _, miss := Missing([]string{"b", "a"}, "a\nb"); !miss {
		t.Error("lines out of order matched")
	}
}

func TestParseMarkers(t *testing.T) {
	doc := "text\n<!-- doc-test: run -->\n```console\n$ echo hi\nhi\n```\n" +
		"<!-- doc-test: e2e background -->\n```sh\nkubectl port-forward svc/x 8090:80\n```\n" +
		"<!-- doc-test: skip: needs a GPU -->\n```sh\nnvidia-smi\n```\n" +
		"```yaml\na: 1\n```\n"
	path := filepath.Join(t.TempDir(), "doc.md")
	os.WriteFile(path, []byte(doc), 0o644)
	blocks, err := Parse(path, "doc.md")
	if err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, b := range blocks {
		modes = append(modes, b.Mode)
	}
	if strings.Join(modes, ",") != "run,e2e background,skip" || !blocks[1].Background() || blocks[0].Commands[0].Want[0] != "hi" {
		t.Fatalf("modes %v, blocks %+v", modes, blocks)
	}
	os.WriteFile(path, []byte("```sh\nls\n```\n"), 0o644)
	if _, err := Parse(path, "doc.md"); err == nil || !strings.Contains(err.Error(), "doc.md:1: a shell block without a") {
		t.Fatalf("unmarked block: %v", err)
	}
}

// A session keeps cd and export between commands, as a terminal does, and a
// mismatch fails the run.
func TestSessionCarriesState(t *testing.T) {
	dir := t.TempDir()
	doc := "<!-- doc-test: run -->\n```console\n$ cd " + dir + " && export GREETING=hello\n$ echo \"$GREETING from $(basename $PWD)\"\nhello from " + filepath.Base(dir) + "\n```\n"
	path := filepath.Join(dir, "doc.md")
	os.WriteFile(path, []byte(doc), 0o644)
	blocks, err := Parse(path, "doc.md")
	if err != nil {
		t.Fatal(err)
	}
	NewSession(t, "/").Run(blocks, "run")
}
