package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taxline/taxline/configs"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, configs.Demo, 0o600)
	os.WriteFile(bad, []byte("queues:\n  - name: a\n    max_wait: 1m\n    overflow: nowhere\nchat:\n  first_respons: 3s\n"), 0o600)

	var out, errb bytes.Buffer
	if code := run([]string{"check-config", good}, nil, &out, &errb); code != 0 {
		t.Fatalf("good config: exit %d: %s%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"check-config", bad}, nil, &out, &errb); code != 1 {
		t.Fatalf("bad config: exit %d", code)
	}
	// The first problem stops the strict decoder: the unknown key, with
	// its file and line.
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:6: .*first_respons`).MatchString(out.String()) {
		t.Errorf("output = %q, want FILE:6: ... first_respons", out.String())
	}
	os.WriteFile(bad, []byte("queues:\n  - name: a\n    max_wait: 1m\n    overflow: nowhere\n"), 0o600)
	out.Reset()
	run([]string{"check-config", bad}, nil, &out, &errb)
	if !strings.HasPrefix(out.String(), bad+":4: ") || !strings.Contains(out.String(), `no queue named "nowhere"`) {
		t.Errorf("output = %q, want FILE:4: ... no queue named", out.String())
	}
}

func TestScoreAndFee(t *testing.T) {
	var out, errb bytes.Buffer
	in := strings.NewReader("provider,score\nA,95\nB,90\nC,80\n")
	if code := run([]string{"score", "-standard", "100"}, in, &out, &errb); code != 0 {
		t.Fatalf("score: exit %d: %s", code, errb.String())
	}
	// B is the middle one: the baseline, 80 % of the standard; A gets
	// 80 × 95/90, C 80 × 80/90.
	for _, want := range []string{"B,90,2,true,80.00", "A,95,1,false,84.44", "C,80,3,false,71.11"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("score output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"fee", "-contract", "400000", "-complaints", "3"}, nil, &out, &errb); code != 0 {
		t.Fatalf("fee: exit %d", code)
	}
	if !strings.Contains(out.String(), "payable                85000.00") {
		t.Errorf("fee output:\n%s", out.String())
	}
	if code := run([]string{"fee", "-contract", "-1"}, nil, &out, &errb); code != 2 {
		t.Errorf("negative contract: exit %d, want 2", code)
	}
}

// TestServe builds the binary, runs it on the embedded demo config with
// random ports, checks /healthz answers within a second of start, that a
// bad config on SIGHUP is refused while the old one keeps serving, and that
// SIGTERM stops it cleanly.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "taxline")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "taxline.yaml")
	os.WriteFile(cfgPath, configs.Demo, 0o600)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "-config", cfgPath, "-http", "127.0.0.1:0", "-sip", "127.0.0.1:0",
		"-data", filepath.Join(dir, "data"))
	stderr, _ := cmd.StderrPipe()
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitFor := func(re *regexp.Regexp) []string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("taxline exited before logging %v", re)
				}
				if m := re.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("no log line matching %v", re)
			}
		}
	}
	addr := waitFor(regexp.MustCompile(`msg="taxline serving" http=(\S+)`))[1]
	var healthy time.Duration
	poll := time.NewTicker(20 * time.Millisecond) // an outside process: poll with a deadline
	defer poll.Stop()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); <-poll.C {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "ok\n" {
				healthy = time.Since(started)
				break
			}
		}
	}
	if healthy == 0 || healthy > time.Second {
		t.Errorf("/healthz answered after %v, want within 1s", healthy)
	}

	os.WriteFile(cfgPath, []byte("queues: [\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(regexp.MustCompile(`config refused; keeping the running one`))
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after a refused reload: status %d", resp.StatusCode)
	}
	os.WriteFile(cfgPath, configs.Demo, 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(regexp.MustCompile(`config reloaded`))

	cmd.Process.Signal(syscall.SIGTERM)
	waitFor(regexp.MustCompile(`taxline stopped`))
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

func TestExportAndPurge(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"export", "-data", dir}, nil, &out, &errb); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "manifest") {
		t.Errorf("export of an empty store has no manifest: %q", out.String())
	}
	// -o writes the same export to a file.
	file := filepath.Join(t.TempDir(), "export.out")
	if code := run([]string{"export", "-data", dir, "-o", file}, nil, &out, &errb); code != 0 {
		t.Fatalf("export -o: exit %d: %s", code, errb.String())
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "manifest") {
		t.Errorf("export -o file: %v %q", err, b)
	}
	if code := run([]string{"export", "-data", dir, "-o", filepath.Join(dir, "no", "such", "dir", "x")}, nil, &out, &errb); code != 1 {
		t.Errorf("export -o to a missing directory: exit %d", code)
	}
	out.Reset()
	if code := run([]string{"purge", "-data", dir, "-before", "2020-01-01"}, nil, &out, &errb); code != 0 {
		t.Fatalf("purge: exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "purged 0 interactions") {
		t.Errorf("purge output %q", out.String())
	}
	if code := run([]string{"purge", "-data", dir, "-before", "yesterday"}, nil, &out, &errb); code != 2 {
		t.Errorf("bad -before: exit %d", code)
	}
}

func TestSimulate(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"simulate", "-date", "2026-03-02", "-agents", "5"}, nil, &out, &errb); code != 0 {
		t.Fatalf("simulate: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"P2 human answer rate", "P3 answered within 1m0s", "C2 first response"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("simulate output lacks %q:\n%s", want, out.String())
		}
	}
	if code := run([]string{"simulate", "-date", "tomorrow"}, nil, &out, &errb); code != 2 {
		t.Errorf("bad date: exit %d", code)
	}
}

func TestReportMonthlyOutput(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	file := filepath.Join(t.TempDir(), "report.csv")
	if code := run([]string{"report", "monthly", "-data", dir, "-month", "2026-03", "-format", "csv", "-o", file}, nil, &out, &errb); code != 0 {
		t.Fatalf("report -o: exit %d: %s", code, errb.String())
	}
	if b, err := os.ReadFile(file); err != nil || len(b) == 0 {
		t.Errorf("report file: %v, %d bytes", err, len(b))
	}
	bad := filepath.Join(t.TempDir(), "bad.out")
	if code := run([]string{"report", "monthly", "-data", dir, "-month", "2026-03", "-format", "pdf", "-o", bad}, nil, &out, &errb); code != 2 {
		t.Errorf("unknown format: exit %d", code)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("unknown format left a file: %v", err)
	}
}
