// Package doctest runs documentation. Every shell block in a tested document
// says whether and where it is run; the blocks are run in order in one bash
// session per document (a reader's terminal: cd and export carry over), and
// what each command shows below it must appear in what it prints. test/docs
// runs the local blocks in make test; test/e2e runs the cluster blocks (with
// the local ones they build on) on the project's Kubernetes.
//
// A marker is an HTML comment on the line before the block's fence:
//
//	<!-- doc-test: run -->             run wherever the document is tested
//	<!-- doc-test: run background -->  start the block's one command (a
//	                                   server) and wait until its shown lines
//	                                   appear; stopped when the document is done
//	<!-- doc-test: e2e -->             run only on a cluster (test/e2e)
//	<!-- doc-test: e2e background -->  a background command, on a cluster only
//	<!-- doc-test: skip: WHY -->       not run, and why
//
// In a console block "$ " starts a command (continued over lines while a
// quote is open or a line ends in "\"); the other lines are its output, of
// which every non-empty line must appear, in order, in what the command
// printed ("…" stands for anything). An sh block is commands only.
package doctest

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

// Block is one fenced shell block and how it is run.
type Block struct {
	File     string
	Line     int
	Mode     string // "run", "background", "e2e", "e2e background" or "skip"
	Commands []Command
}

// Background reports whether the block is a server started in the background.
func (b Block) Background() bool { return strings.HasSuffix(b.Mode, "background") }

// Command is one command of a block and the output lines shown for it.
type Command struct {
	Text string
	Want []string
	Line int
}

var markerRE = regexp.MustCompile(`^<!-- doc-test: (run|run background|e2e|e2e background|skip: .+) -->$`)

var shellFences = map[string]bool{"```console": true, "```sh": true, "```bash": true, "```shell": true}

// Parse reads the shell blocks of the document at path (name in messages).
// A shell block without a marker is an error.
func Parse(path, name string) ([]Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	var out []Block
	var problems []string
	for i := 0; i < len(lines); i++ {
		fence := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(fence, "```") {
			continue
		}
		if !shellFences[fence] { // any other block: skip over it
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			}
			continue
		}
		bl := Block{File: name, Line: i + 1}
		if m := markerRE.FindStringSubmatch(strings.TrimSpace(prev(lines, i))); m == nil {
			problems = append(problems, fmt.Sprintf("%s:%d: a shell block without a <!-- doc-test: run | run background | e2e | e2e background | skip: WHY --> marker on the line before", name, i+1))
		} else if strings.HasPrefix(m[1], "skip") {
			bl.Mode = "skip"
		} else {
			bl.Mode = strings.TrimSuffix(strings.Replace(m[1], "run background", "background", 1), " ")
		}
		var body []string
		first := i + 2
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		bl.Commands = splitCommands(body, fence == "```console", first)
		out = append(out, bl)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return out, nil
}

func prev(lines []string, i int) string {
	if i == 0 {
		return ""
	}
	return lines[i-1]
}

// splitCommands splits a block's lines into commands and their shown output.
func splitCommands(body []string, console bool, firstLine int) []Command {
	var out []Command
	open := func(s string) bool { return strings.Count(s, "'")%2 == 1 || strings.HasSuffix(s, "\\") }
	for i := 0; i < len(body); i++ {
		l := body[i]
		switch {
		case console && strings.HasPrefix(l, "$ "):
			c := Command{Text: l[2:], Line: firstLine + i}
			for open(c.Text) && i+1 < len(body) {
				i++
				c.Text += "\n" + body[i]
			}
			out = append(out, c)
		case console:
			if len(out) > 0 && strings.TrimSpace(l) != "" {
				out[len(out)-1].Want = append(out[len(out)-1].Want, strings.TrimRight(l, " "))
			}
		default:
			if s := strings.TrimSpace(l); s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			c := Command{Text: l, Line: firstLine + i}
			for open(c.Text) && i+1 < len(body) {
				i++
				c.Text += "\n" + body[i]
			}
			out = append(out, c)
		}
	}
	return out
}

// wantRE turns a shown output line into a pattern: "…" is anything. Runs of
// spaces count as one (a table's column widths follow its longest cell).
func wantRE(line string) *regexp.Regexp {
	parts := strings.Split(squeeze(line), "…")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
}

// Missing returns the first shown line that does not appear, in order, in got.
func Missing(want []string, got string) (string, bool) {
	lines := strings.Split(got, "\n")
	j := 0
	for _, w := range want {
		re := wantRE(w)
		for ; j < len(lines) && !re.MatchString(squeeze(lines[j])); j++ {
		}
		if j == len(lines) {
			return w, true
		}
		j++
	}
	return "", false
}

var spaces = regexp.MustCompile(`\s+`)

// squeeze trims a line and turns each run of white space into one space.
func squeeze(s string) string { return spaces.ReplaceAllString(strings.TrimSpace(s), " ") }

// Session is one bash process: a reader's terminal.
type Session struct {
	t       testing.TB
	stdin   io.WriteCloser
	lines   chan string
	cmd     *exec.Cmd
	pgroups []int
	n       int
	logs    string
	// transcript, when set, gets every command and what it printed.
	transcript *os.File
}

// Transcript appends every command the session runs, and what it printed,
// to the file at path (for a run's artifacts).
func (s *Session) Transcript(path string) {
	f, err := os.Create(path)
	if err != nil {
		s.t.Logf("transcript: %v", err)
		return
	}
	s.transcript = f
	s.t.Cleanup(func() { f.Close() })
}

func (s *Session) record(c Command, got string) {
	if s.transcript != nil {
		fmt.Fprintf(s.transcript, "$ %s\n%s\n\n", c.Text, got)
	}
}

// NewSession starts bash in dir with the environment plus env, closed (and
// its background servers stopped) when the test ends.
func NewSession(t testing.TB, dir string, env ...string) *Session {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PATH=/usr/local/go/bin:"+os.Getenv("PATH"), "TERM=dumb"), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Session{t: t, stdin: stdin, lines: make(chan string, 1024), cmd: cmd, logs: t.TempDir()}
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

func (s *Session) write(text string) {
	if _, err := io.WriteString(s.stdin, text); err != nil {
		s.t.Fatalf("bash: %v", err)
	}
}

// run runs one command in the session and returns what it printed and its
// exit status.
func (s *Session) run(text string, timeout time.Duration) (string, int) {
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
func (s *Session) background(text string, want []string, log string, timeout time.Duration) (string, bool) {
	out, rc := s.run(fmt.Sprintf("setsid bash -c %s >%s 2>&1 < /dev/null & echo $!", shellQuote(text), shellQuote(log)), 10*time.Second)
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if rc != 0 || err != nil {
		s.t.Fatalf("starting %q: %s (rc %d)", text, out, rc)
	}
	s.pgroups = append(s.pgroups, pid)
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(log)
		if _, miss := Missing(want, string(b)); !miss {
			return string(b), true
		}
		if syscall.Kill(pid, 0) != nil {
			break // it exited
		}
	}
	b, _ := os.ReadFile(log)
	return string(b), false
}

func (s *Session) close() {
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

// Run runs the blocks whose mode is in modes, in order, failing the test at
// the first command that exits non-zero or does not print what is shown.
func (s *Session) Run(blocks []Block, modes ...string) {
	t := s.t
	t.Helper()
	want := map[string]bool{}
	for _, m := range modes {
		want[m] = true
	}
	for _, bl := range blocks {
		if !want[bl.Mode] {
			continue
		}
		if bl.Background() {
			if len(bl.Commands) != 1 {
				t.Fatalf("%s:%d: a background block holds one command, this one %d", bl.File, bl.Line, len(bl.Commands))
			}
			c := bl.Commands[0]
			log := filepath.Join(s.logs, fmt.Sprintf("line%d.log", c.Line))
			got, ok := s.background(c.Text, c.Want, log, 5*time.Minute)
			s.record(c, got)
			if !ok {
				w, _ := Missing(c.Want, got)
				t.Fatalf("%s:%d: %s\nnever printed %q; it printed:\n%s", bl.File, c.Line, c.Text, w, got)
			}
			continue
		}
		for _, c := range bl.Commands {
			got, rc := s.run(c.Text, 5*time.Minute)
			s.record(c, got)
			if rc != 0 {
				t.Fatalf("%s:%d: %s\nexited %d:\n%s", bl.File, c.Line, c.Text, rc, got)
			}
			if w, miss := Missing(c.Want, got); miss {
				t.Fatalf("%s:%d: %s\ndid not print %q; it printed:\n%s", bl.File, c.Line, c.Text, w, got)
			}
		}
	}
}

// PortsFree fails the test when a port the documented servers use is taken.
func PortsFree(t testing.TB, ports ...string) {
	t.Helper()
	for _, p := range ports {
		ln, err := net.Listen("tcp", ":"+p)
		if err != nil {
			t.Fatalf("port %s is in use: the documented commands serve on it (%v)", p, err)
		}
		ln.Close()
	}
}
