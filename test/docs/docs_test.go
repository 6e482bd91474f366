// Package docs runs the documentation. Every shell block in README.md and
// docs/getting-started.md says whether it is run: the ones marked run are run
// here, in order, in one bash session per file (as a reader's terminal: cd
// and export carry over), and what each shows must appear in what it prints.
// The docs cannot drift from the code without this test failing.
//
// A marker is an HTML comment on the line before the block's fence:
//
//	<!-- doc-test: run -->             run; shown output lines must appear
//	<!-- doc-test: run background -->  start the block's one command (a
//	                                   server) and wait until its shown lines
//	                                   appear; stopped when the file is done
//	<!-- doc-test: skip: WHY -->       not run here, and why
//
// In a console block "$ " starts a command (continued over lines while a
// quote is open or a line ends in "\"); the other lines are its output, of
// which every non-empty line must appear, in order, in what the command
// printed ("…" stands for anything). An sh block is commands only.
package docs

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// documents are the files whose shell blocks are tested.
var documents = []string{"README.md", "docs/getting-started.md"}

type block struct {
	file     string
	line     int
	mode     string // "run", "background" or "skip"
	commands []command
}

type command struct {
	text string
	want []string
	line int
}

var markerRE = regexp.MustCompile(`^<!-- doc-test: (run|run background|skip: .+) -->$`)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// parse reads the shell blocks of one document with their markers.
func parse(t *testing.T, path, name string) []block {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []block
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") || (fence != "```console" && fence != "```sh" && fence != "```bash" && fence != "```shell") {
			if strings.HasPrefix(fence, "```") { // any other block: skip over it
				for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				}
			}
			continue
		}
		bl := block{file: name, line: i + 1}
		if i == 0 || !markerRE.MatchString(strings.TrimSpace(lines[i-1])) {
			t.Errorf("%s:%d: a shell block without a <!-- doc-test: run | run background | skip: WHY --> marker on the line before", name, i+1)
		} else {
			switch m := markerRE.FindStringSubmatch(strings.TrimSpace(lines[i-1]))[1]; {
			case strings.HasPrefix(m, "skip"):
				bl.mode = "skip"
			case m == "run background":
				bl.mode = "background"
			default:
				bl.mode = "run"
			}
		}
		var body []string
		start := i + 2
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		bl.commands = commands(body, fence == "```console", start)
		out = append(out, bl)
	}
	return out
}

// commands splits a block's lines into commands and their shown output.
func commands(body []string, console bool, firstLine int) []command {
	var out []command
	open := func(s string) bool { return strings.Count(s, "'")%2 == 1 || strings.HasSuffix(s, "\\") }
	for i := 0; i < len(body); i++ {
		l := body[i]
		switch {
		case console && strings.HasPrefix(l, "$ "):
			c := command{text: l[2:], line: firstLine + i}
			for open(c.text) && i+1 < len(body) {
				i++
				c.text += "\n" + body[i]
			}
			out = append(out, c)
		case console:
			if len(out) > 0 && strings.TrimSpace(l) != "" {
				out[len(out)-1].want = append(out[len(out)-1].want, strings.TrimRight(l, " "))
			}
		default:
			if s := strings.TrimSpace(l); s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			c := command{text: l, line: firstLine + i}
			for open(c.text) && i+1 < len(body) {
				i++
				c.text += "\n" + body[i]
			}
			out = append(out, c)
		}
	}
	return out
}

// wantRE turns a shown output line into a pattern: "…" is anything.
func wantRE(line string) *regexp.Regexp {
	parts := strings.Split(line, "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// missing returns the first shown line that does not appear, in order, in got.
func missing(want []string, got string) (string, bool) {
	lines := strings.Split(got, "\n")
	j := 0
	for _, w := range want {
		re := wantRE(w)
		for ; j < len(lines) && !re.MatchString(strings.TrimRight(lines[j], " \r")); j++ {
		}
		if j == len(lines) {
			return w, true
		}
		j++
	}
	return "", false
}

// session is one bash process, a reader's terminal.
type session struct {
	t       *testing.T
	stdin   io.WriteCloser
	lines   chan string
	cmd     *exec.Cmd
	pgroups []int
	n       int
}

func newSession(t *testing.T, dir string) *session {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH=/usr/local/go/bin:"+os.Getenv("PATH"), "TERM=dumb")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, stdin: stdin, lines: make(chan string, 1024), cmd: cmd}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(s.close)
	s.write("set -o pipefail\n")
	return s
}

func (s *session) write(text string) {
	if _, err := io.WriteString(s.stdin, text); err != nil {
		s.t.Fatalf("bash: %v", err)
	}
}

// run runs one command in the session and returns what it printed and its
// exit status.
func (s *session) run(text string, timeout time.Duration) (string, int) {
	s.n++
	mark := fmt.Sprintf("__doc_test_%d_rc=", s.n)
	s.write("{\n" + text + "\n} 2>&1; echo \"" + mark + "$?\"\n")
	var out []string
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return strings.Join(out, "\n"), -1
			}
			if i := strings.Index(l, mark); i >= 0 {
				if i > 0 {
					out = append(out, l[:i])
				}
				rc, _ := strconv.Atoi(l[i+len(mark):])
				return strings.Join(out, "\n"), rc
			}
			out = append(out, l)
		case <-deadline:
			return strings.Join(out, "\n") + "\n(timed out)", -1
		}
	}
}

// background starts text in a process group of its own, logging to a file,
// and waits until want appears in the log.
func (s *session) background(text string, want []string, log string, timeout time.Duration) (string, bool) {
	out, rc := s.run(fmt.Sprintf("setsid bash -c %s >%s 2>&1 < /dev/null & echo $!", shellQuote(text), shellQuote(log)), 10*time.Second)
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if rc != 0 || err != nil {
		s.t.Fatalf("starting %q: %s (rc %d)", text, out, rc)
	}
	s.pgroups = append(s.pgroups, pid)
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(log)
		if _, miss := missing(want, string(b)); !miss {
			return string(b), true
		}
		if syscall.Kill(pid, 0) != nil {
			break // it exited
		}
	}
	b, _ := os.ReadFile(log)
	return string(b), false
}

func (s *session) close() {
	for _, pg := range s.pgroups {
		syscall.Kill(-pg, syscall.SIGTERM)
	}
	for _, pg := range s.pgroups {
		for i := 0; i < 100 && syscall.Kill(pg, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Kill(-pg, syscall.SIGKILL)
	}
	s.stdin.Close()
	s.cmd.Wait()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// portsFree fails the test when a port the documented servers use is taken.
func portsFree(t *testing.T, ports ...string) {
	t.Helper()
	for _, p := range ports {
		ln, err := net.Listen("tcp", ":"+p)
		if err != nil {
			t.Fatalf("port %s is in use: the documented commands serve on it (%v)", p, err)
		}
		ln.Close()
	}
}

func runDocument(t *testing.T, name string) {
	root := repoRoot(t)
	blocks := parse(t, filepath.Join(root, name), name)
	if t.Failed() {
		return
	}
	if os.Getenv("TIDE_REQUIRE_INTEGRATION") == "" && testing.Short() {
		t.Skip("-short: not running the documented commands")
	}
	portsFree(t, "8080", "8081")
	s := newSession(t, root)
	logs := t.TempDir()
	for _, bl := range blocks {
		switch bl.mode {
		case "skip":
			continue
		case "background":
			if len(bl.commands) != 1 {
				t.Fatalf("%s:%d: a background block holds one command, this one %d", name, bl.line, len(bl.commands))
			}
			c := bl.commands[0]
			log := filepath.Join(logs, fmt.Sprintf("line%d.log", c.line))
			if got, ok := s.background(c.text, c.want, log, 5*time.Minute); !ok {
				w, _ := missing(c.want, got)
				t.Fatalf("%s:%d: %s\nnever printed %q; it printed:\n%s", name, c.line, c.text, w, got)
			}
		default:
			for _, c := range bl.commands {
				got, rc := s.run(c.text, 5*time.Minute)
				if rc != 0 {
					t.Fatalf("%s:%d: %s\nexited %d:\n%s", name, c.line, c.text, rc, got)
				}
				if w, miss := missing(c.want, got); miss {
					t.Fatalf("%s:%d: %s\ndid not print %q; it printed:\n%s", name, c.line, c.text, w, got)
				}
			}
		}
	}
}

func TestREADME(t *testing.T) { runDocument(t, "README.md") }

func TestGettingStarted(t *testing.T) { runDocument(t, "docs/getting-started.md") }

// The parser itself: commands, continuations and shown output.
func TestParseCommands(t *testing.T) {
	cs := commands([]string{
		"$ curl -s localhost:8080/predict -d '{\"a\": 1,",
		"    \"b\": 2}'",
		`{"prediction":[0]}`,
		"",
		"$ echo a \\",
		"  b",
		"a b",
	}, true, 10)
	if len(cs) != 2 || cs[0].line != 10 || !strings.Contains(cs[0].text, "\"b\": 2}'") || len(cs[0].want) != 1 || cs[1].text != "echo a \\\n  b" || cs[1].want[0] != "a b" {
		t.Fatalf("%+v", cs)
	}
	if _, miss := missing([]string{"time=… msg=serving addr=[::]:8080 models=[fraud]", "x"}, "time=1 msg=serving addr=[::]:8080 models=[fraud]\ny\nx"); miss {
		t.Error("an elided line did not match")
	}
	if _, miss := missing([]string{"b", "a"}, "a\nb"); !miss {
		t.Error("lines out of order matched")
	}
}
