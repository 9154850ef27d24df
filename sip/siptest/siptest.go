// Package siptest runs the real peers that the SIP gateway's end-to-end
// tests talk to on loopback: SIPp playing a trunk, and baresip playing an
// agent's softphone. A missing program fails the test (CI installs them:
// apt-get install -y sip-tester baresip sox).
package siptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Need fails the test unless every named program is installed.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("siptest: %s is not installed (apt-get install -y sip-tester baresip sox): %v", p, err)
		}
	}
}

// FreePort returns a port that was free on 127.0.0.1 for both UDP and TCP
// a moment ago; with pair, an even one whose odd neighbour (RTCP, or
// baresip's SIP/TLS listener) was free too.
func FreePort(t testing.TB, pair bool) int {
	t.Helper()
	n := 1
	if pair {
		n = 2
	}
	for i := 0; i < 500; i++ {
		p := 20000 + rand.IntN(40000)
		if pair {
			p &^= 1
		}
		if portsFree(p, n) {
			return p
		}
	}
	t.Fatal("siptest: no free port")
	return 0
}

// portsFree reports whether UDP and TCP ports p … p+n-1 can be bound.
func portsFree(p, n int) bool {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	for q := p; q < p+n; q++ {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: q})
		if err != nil {
			return false
		}
		closers = append(closers, u.Close)
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: q})
		if err != nil {
			return false
		}
		closers = append(closers, l.Close)
	}
	return true
}

// Tone writes a sine tone as an 8 kHz mono 16-bit WAV with sox.
func Tone(t testing.TB, path string, seconds float64, hz int) {
	t.Helper()
	out, err := exec.Command("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", path,
		"synth", strconv.FormatFloat(seconds, 'f', 2, 64), "sine", strconv.Itoa(hz), "gain", "-6").CombinedOutput()
	if err != nil {
		t.Fatalf("siptest: sox: %v\n%s", err, out)
	}
}

// SIPp is one run of SIPp.
type SIPp struct {
	Args   []string
	Output string
	Err    error
}

// RunSIPp runs sipp with args against target (host:port; "" for a UAS)
// and waits for it.
// It always bounds the run: -m 1 unless given, -recv_timeout and -timeout.
func RunSIPp(ctx context.Context, t testing.TB, target string, args ...string) SIPp {
	t.Helper()
	dir := t.TempDir()
	var all []string
	if target != "" {
		all = append(all, target)
	}
	all = append(all, "-nostdin", "-trace_err", "-trace_msg",
		"-message_file", filepath.Join(dir, "msg.log"), "-error_file", filepath.Join(dir, "err.log"))
	has := func(f string) bool {
		for _, a := range args {
			if a == f {
				return true
			}
		}
		return false
	}
	if !has("-i") {
		all = append(all, "-i", "127.0.0.1")
	}
	if !has("-m") {
		all = append(all, "-m", "1")
	}
	if !has("-recv_timeout") {
		all = append(all, "-recv_timeout", "30000")
	}
	if !has("-timeout") {
		all = append(all, "-timeout", "60s")
	}
	if !has("-mp") {
		all = append(all, "-mp", strconv.Itoa(FreePort(t, true)))
	}
	all = append(all, args...)
	cmd := exec.CommandContext(ctx, "sipp", all...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	msgs, _ := os.ReadFile(filepath.Join(dir, "msg.log"))
	errs, _ := os.ReadFile(filepath.Join(dir, "err.log"))
	return SIPp{Args: all, Output: tail(out.String(), 3000) + "\n--- errors:\n" + tail(string(errs), 3000) +
		"\n--- messages:\n" + tail(string(msgs), 6000), Err: err}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Baresip is a running baresip softphone registered as an agent.
type Baresip struct {
	Dir  string
	Port int // SIP listen port
	ctrl string
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan error
}

// BaresipConfig says how to start baresip.
type BaresipConfig struct {
	// Agent and Password are the digest credentials; Registrar is the
	// gateway's host:port.
	Agent, Password, Registrar string
	// Tone is the WAV file the phone "speaks" (8 kHz mono 16-bit).
	Tone string
	// AnswerMode is auto (default) or manual.
	AnswerMode string
}

// StartBaresip starts baresip with a fresh config folder and stops it when
// the test ends.
func StartBaresip(t testing.TB, c BaresipConfig) *Baresip {
	t.Helper()
	Need(t, "baresip")
	dir := t.TempDir()
	// baresip listens on Port for UDP and TCP and on Port+1 for TLS.
	b := &Baresip{Dir: dir, Port: FreePort(t, true), out: &SyncBuffer{}, done: make(chan error, 1)}
	b.ctrl = "127.0.0.1:" + strconv.Itoa(FreePort(t, false))
	mode := c.AnswerMode
	if mode == "" {
		mode = "auto"
	}
	rtp := FreePort(t, true)
	conf := fmt.Sprintf(`poll_method		poll
sip_listen		127.0.0.1:%d
sip_trans_def		udp
audio_source		aufile,%s
audio_player		aufile,%s
audio_alert		aufile,%s
rtp_ports		%d-%d
module_path		/usr/lib/baresip/modules
module			g711.so
module			aufile.so
module			account.so
module			ctrl_tcp.so
module_app		menu.so
ctrl_tcp_listen		%s
dns_server		127.0.0.1:53
`, b.Port, c.Tone, filepath.Join(dir, "heard.wav"), filepath.Join(dir, "alert.wav"), rtp, rtp+1, b.ctrl)
	acct := fmt.Sprintf("<sip:%s@%s;transport=udp>;auth_pass=%s;answermode=%s;audio_codecs=PCMA,PCMU;regint=60\n",
		c.Agent, c.Registrar, c.Password, mode)
	for name, body := range map[string]string{"config": conf, "accounts": acct, "contacts": "", "current_contact": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b.cmd = exec.Command("baresip", "-f", dir)
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("siptest: start baresip: %v", err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() { b.Stop() })
	return b
}

// Stop kills baresip (as a crash would) and waits for it.
func (b *Baresip) Stop() {
	if b.cmd.Process == nil {
		return
	}
	select {
	case err := <-b.done: // already exited; keep the result for the next Stop
		b.done <- err
		return
	default:
	}
	_ = b.cmd.Process.Kill()
	err := <-b.done
	b.done <- err
}

// Output is what baresip printed.
func (b *Baresip) Output() string { return b.out.String() }

// Command sends one ctrl_tcp command (a netstring holding JSON), e.g.
// "hangup", and returns the response.
func (b *Baresip) Command(cmd, params string) (string, error) {
	var conn net.Conn
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		conn, err = net.DialTimeout("tcp", b.ctrl, time.Second)
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // baresip is still starting; poll
	}
	if err != nil {
		return "", fmt.Errorf("siptest: baresip control: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	js, _ := json.Marshal(map[string]string{"command": cmd, "params": params, "token": "t1"})
	if _, err := fmt.Fprintf(conn, "%d:%s,", len(js), js); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	for {
		lenStr, err := r.ReadString(':')
		if err != nil {
			return "", err
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenStr, ":"))
		if err != nil || n > 1<<20 {
			return "", fmt.Errorf("siptest: bad netstring from baresip")
		}
		buf := make([]byte, n+1)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		msg := string(buf[:n])
		if strings.Contains(msg, `"response"`) {
			return msg, nil
		}
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers: a log or a
// child process's output that a test reads while it is written.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Events is a connection to baresip's ctrl_tcp that collects the events
// it sends (call progress, DTMF received: CALL_DTMF_START with the key as
// its param). baresip's own output is block-buffered when it is not a
// terminal, so events are the reliable way to see what the phone did.
type Events struct {
	conn net.Conn
	mu   sync.Mutex // guards seen
	seen []string
	done chan struct{}
}

// WatchEvents connects to baresip's control port and collects events
// until the test ends.
func (b *Baresip) WatchEvents(t testing.TB) *Events {
	t.Helper()
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		conn, err = net.DialTimeout("tcp", b.ctrl, time.Second)
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // baresip is still starting; poll
	}
	if err != nil {
		t.Fatalf("siptest: baresip control: %v", err)
	}
	e := &Events{conn: conn, done: make(chan struct{})}
	go e.read()
	t.Cleanup(func() {
		_ = conn.Close()
		<-e.done
	})
	return e
}

func (e *Events) read() {
	defer close(e.done)
	r := bufio.NewReader(e.conn)
	for {
		lenStr, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenStr, ":"))
		if err != nil || n > 1<<20 {
			return
		}
		buf := make([]byte, n+1)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		e.mu.Lock()
		e.seen = append(e.seen, string(buf[:n]))
		e.mu.Unlock()
	}
}

// Seen reports whether an event of that type with that param arrived
// (param "" matches any).
func (e *Events) Seen(typ, param string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.seen {
		var ev struct {
			Event bool   `json:"event"`
			Type  string `json:"type"`
			Param string `json:"param"`
		}
		if json.Unmarshal([]byte(s), &ev) == nil && ev.Event && ev.Type == typ && (param == "" || ev.Param == param) {
			return true
		}
	}
	return false
}

// All is every event message so far, for a failing test's log.
func (e *Events) All() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}
