package sip

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
	"github.com/icholy/digest"
	"go.uber.org/goleak"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
	"github.com/taxline/taxline/queue"
	tsiptest "github.com/taxline/taxline/sip/siptest"
)

// fakePresence records SetPresence calls.
type fakePresence struct {
	mu    sync.Mutex
	state map[string]bool
	calls chan string // "1001=true"
}

func newFakePresence() *fakePresence {
	return &fakePresence{state: make(map[string]bool), calls: make(chan string, 1024)}
}

func (f *fakePresence) SetPresence(_ context.Context, agent string, m queue.Media, present bool) error {
	if m != queue.MediaVoice {
		return fmt.Errorf("unexpected media %v", m)
	}
	f.mu.Lock()
	f.state[agent] = present
	f.mu.Unlock()
	select {
	case f.calls <- fmt.Sprintf("%s=%v", agent, present):
	default:
	}
	return nil
}

// wait returns the next SetPresence call or fails after a deadline.
func (f *fakePresence) wait(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-f.calls:
			if got == want {
				return
			}
			t.Logf("presence: %s (waiting for %s)", got, want)
		case <-deadline:
			t.Fatalf("no presence update %s", want)
		}
	}
}

// testConfig is the demo config with short registrar settings: 1001–1005
// with passwords demo-100N, trunk source 127.0.0.1/32.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SIP.Registrar.FailureLimit = 5
	cfg.SIP.Registrar.FailureWindow = time.Minute
	cfg.SIP.Registrar.BanTime = 10 * time.Minute
	cfg.SIP.Registrar.NonceLifetime = 5 * time.Minute
	cfg.SIP.Registrar.MinExpires = 60 * time.Second
	cfg.SIP.Registrar.MaxExpires = time.Hour
	cfg.SIP.Trunks[0].Sources = []string{"127.0.0.9/32"}
	return cfg
}

// testClock is a settable clock for the registrar.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	r     *Registrar
	clock *testClock
	pres  *fakePresence
	logs  *tsiptest.SyncBuffer
	cseq  uint32
}

func newHarness(t testing.TB, cfg *config.Config) *harness {
	t.Helper()
	if cfg == nil {
		cfg = testConfig(t)
	}
	h := &harness{clock: &testClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, pres: newFakePresence(), logs: new(tsiptest.SyncBuffer)}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h.r = NewRegistrar(cfg, h.pres, log)
	h.r.now = h.clock.now
	return h
}

// register builds a REGISTER for user from src (host:port) with one contact.
func (h *harness) register(src, user, contact string, expires int) *gosip.Request {
	h.cseq++
	req := gosip.NewRequest(gosip.REGISTER, gosip.Uri{Scheme: "sip", Host: "127.0.0.1"})
	host, port, _ := strings.Cut(src, ":")
	via := &gosip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: host, Params: gosip.NewParams()}
	fmt.Sscan(port, &via.Port)
	via.Params.Add("branch", gosip.GenerateBranch())
	req.AppendHeader(via)
	from := &gosip.FromHeader{Address: gosip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1"}, Params: gosip.NewParams()}
	from.Params.Add("tag", gosip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&gosip.ToHeader{Address: gosip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1"}, Params: gosip.NewParams()})
	callid := gosip.CallIDHeader("call-" + user + "-" + src)
	req.AppendHeader(&callid)
	req.AppendHeader(&gosip.CSeqHeader{SeqNo: h.cseq, MethodName: gosip.REGISTER})
	if contact != "" {
		var ch gosip.ContactHeader
		if contact == "*" {
			ch.Address.Wildcard = true
		} else if err := gosip.ParseUri(contact, &ch.Address); err != nil {
			panic(err)
		}
		req.AppendHeader(&ch)
	}
	if expires >= 0 {
		req.AppendHeader(gosip.NewHeader("Expires", fmt.Sprint(expires)))
	}
	req.SetSource(src)
	req.SetTransport("UDP")
	return req
}

// do runs req through HandleRegister and returns the response, or nil when
// the registrar dropped it.
func (h *harness) do(t testing.TB, req *gosip.Request) *gosip.Response {
	t.Helper()
	tx := siptest.NewServerTxRecorder(req)
	defer tx.Terminate()
	h.r.HandleRegister(req, tx)
	res := tx.Result()
	if len(res) == 0 {
		return nil
	}
	return res[len(res)-1]
}

// answer computes credentials for req from the challenge at index i of
// res's WWW-Authenticate headers, as an independent client library does.
func answer(t testing.TB, req *gosip.Request, res *gosip.Response, i int, user, pass string, nc int) string {
	t.Helper()
	hs := res.GetHeaders("WWW-Authenticate")
	if len(hs) <= i {
		t.Fatalf("response %d has %d challenges", res.StatusCode, len(hs))
	}
	chal, err := digest.ParseChallenge(hs[i].Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: req.Method.String(), URI: req.Recipient.Addr(), Username: user, Password: pass, Count: nc})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func withAuth(req *gosip.Request, auth string) *gosip.Request {
	req.RemoveHeader("Authorization")
	req.AppendHeader(gosip.NewHeader("Authorization", auth))
	return req
}

// login registers user from src with the challenge at index alg.
func (h *harness) login(t testing.TB, src, user, pass, contact string, alg int) *gosip.Response {
	t.Helper()
	res := h.do(t, h.register(src, user, contact, 300))
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("first REGISTER: want 401, got %v", res)
	}
	req := h.register(src, user, contact, 300)
	return h.do(t, withAuth(req, answer(t, req, res, alg, user, pass, 1)))
}

func TestRegisterSHA256AndMD5(t *testing.T) {
	h := newHarness(t, nil)
	res := h.do(t, h.register("127.0.0.1:5070", "1001", "sip:1001@127.0.0.1:5070", 300))
	if res == nil || res.StatusCode != 401 {
		t.Fatalf("want 401, got %v", res)
	}
	chs := res.GetHeaders("WWW-Authenticate")
	if len(chs) != 2 || !strings.Contains(chs[0].Value(), "algorithm=SHA-256") || !strings.Contains(chs[1].Value(), "algorithm=MD5") {
		t.Fatalf("want SHA-256 then MD5 challenges, got %v", chs)
	}
	for _, v := range chs {
		if !strings.Contains(v.Value(), `qop="auth"`) || !strings.Contains(v.Value(), `realm="taxline"`) {
			t.Errorf("challenge %q lacks qop or realm", v.Value())
		}
	}
	for alg, user := range []string{"1001", "1002"} {
		contact := "sip:" + user + "@127.0.0.1:5070"
		res := h.login(t, "127.0.0.1:5070", user, "demo-"+user, contact, alg)
		if res.StatusCode != 200 {
			t.Fatalf("%s with challenge %d: got %d", user, alg, res.StatusCode)
		}
		if c := res.GetHeader("Contact"); c == nil || !strings.Contains(c.Value(), "expires=300") {
			t.Errorf("200 OK Contact = %v, want the binding with expires=300", c)
		}
		b, ok := h.r.Lookup(user)
		if !ok || b.Contact.String() != contact || b.Source != "127.0.0.1:5070" || b.Transport != "UDP" {
			t.Errorf("Lookup(%s) = %+v, %v", user, b, ok)
		}
		if want := h.clock.now().Add(300 * time.Second); !b.Expires.Equal(want) {
			t.Errorf("expires %v, want %v", b.Expires, want)
		}
	}
}

// TestUnknownUserLooksLikeWrongPassword: Asterisk's alwaysauthreject. The
// two answers differ only in the fresh nonce and the To tag.
func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	h := newHarness(t, nil)
	norm := regexp.MustCompile(`nonce="[^"]*"|tag=[^;>\s]*|branch=[^;\s]*|Call-ID: .*|From: .*|To: .*|Via: .*|CSeq: .*`)
	attempt := func(user, pass string) string {
		src := "127.0.0.5:5070"
		res := h.do(t, h.register(src, user, "sip:x@127.0.0.5:5070", 300))
		req := h.register(src, user, "sip:x@127.0.0.5:5070", 300)
		res = h.do(t, withAuth(req, answer(t, req, res, 0, user, pass, 1)))
		if res == nil {
			t.Fatal("dropped")
		}
		return norm.ReplaceAllString(res.String(), "X")
	}
	wrong := attempt("1001", "not-the-password")
	unknown := attempt("9999", "whatever")
	if wrong != unknown {
		t.Fatalf("responses differ:\n--- wrong password\n%s\n--- unknown user\n%s", wrong, unknown)
	}
	if !strings.HasPrefix(wrong, "SIP/2.0 401 Unauthorized") {
		t.Fatalf("want 401, got\n%s", wrong)
	}
	if _, ok := h.r.Lookup("1001"); ok {
		t.Fatal("wrong password registered")
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "reason=wrong_password") || !strings.Contains(logs, "reason=unknown_user") {
		t.Errorf("security log lacks reasons:\n%s", logs)
	}
	if strings.Contains(logs, "not-the-password") || strings.Contains(logs, "whatever") || strings.Contains(logs, "response=") {
		t.Errorf("security log leaks a secret:\n%s", logs)
	}
}

// fail2banRegex is the failregex documented in docs/SIP-SECURITY.md, with
// <HOST> expanded the way fail2ban does for IPv4.
var fail2banRegex = regexp.MustCompile(`level=WARN msg="sip auth failure" src=(?P<host>[0-9.]+|[0-9a-fA-F:]+) `)

func TestSecurityLogLine(t *testing.T) {
	h := newHarness(t, nil)
	res := h.do(t, h.register("127.0.0.6:5099", "1003", "sip:1003@127.0.0.6:5099", 300))
	req := h.register("127.0.0.6:5099", "1003", "sip:1003@127.0.0.6:5099", 300)
	h.do(t, withAuth(req, answer(t, req, res, 0, "1003", "bad", 1)))
	var line string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, "sip auth failure") {
			line = l
		}
	}
	m := fail2banRegex.FindStringSubmatch(line)
	if m == nil || m[1] != "127.0.0.6" {
		t.Fatalf("fail2ban regex does not find the host in %q", line)
	}
	for _, want := range []string{"port=5099", "user=1003", "reason=wrong_password", "method=REGISTER"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %s", line, want)
		}
	}
}

func TestStaleNonce(t *testing.T) {
	h := newHarness(t, nil)
	src := "127.0.0.1:5070"
	res := h.do(t, h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300))
	h.clock.advance(6 * time.Minute)

	req := h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300)
	res2 := h.do(t, withAuth(req, answer(t, req, res, 0, "1001", "demo-1001", 1)))
	if res2.StatusCode != 401 || !strings.Contains(res2.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("right password on an old nonce: want 401 stale=true, got %s", res2.Short())
	}
	if strings.Contains(h.logs.String(), "sip auth failure") {
		t.Error("a stale nonce with the right password was logged as a failure")
	}
	// A wrong password on an old nonce is a plain failure, no stale flag.
	req = h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300)
	res3 := h.do(t, withAuth(req, answer(t, req, res, 0, "1001", "wrong", 1)))
	if res3.StatusCode != 401 || strings.Contains(res3.GetHeader("WWW-Authenticate").Value(), "stale") {
		t.Fatalf("wrong password on an old nonce: want 401 without stale, got %s", res3)
	}
	// The fresh challenge works.
	req = h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300)
	if res4 := h.do(t, withAuth(req, answer(t, req, res2, 0, "1001", "demo-1001", 1))); res4.StatusCode != 200 {
		t.Fatalf("after stale: got %s", res4.Short())
	}
}

func TestNonceCountReplay(t *testing.T) {
	h := newHarness(t, nil)
	src := "127.0.0.1:5070"
	res := h.do(t, h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300))
	req := h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300)
	auth := answer(t, req, res, 0, "1001", "demo-1001", 1)
	if got := h.do(t, withAuth(req, auth)); got.StatusCode != 200 {
		t.Fatalf("first use: %s", got.Short())
	}
	// The same Authorization again (a captured packet replayed).
	if got := h.do(t, withAuth(h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300), auth)); got.StatusCode != 401 {
		t.Fatalf("replayed nc: want 401, got %s", got.Short())
	}
	if !strings.Contains(h.logs.String(), "reason=nonce_count_replay") {
		t.Error("replay not logged")
	}
	// A higher nc on the same nonce is fine (RFC 7616 §3.4).
	req = h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300)
	if got := h.do(t, withAuth(req, answer(t, req, res, 0, "1001", "demo-1001", 2))); got.StatusCode != 200 {
		t.Fatalf("nc=2: %s", got.Short())
	}
}

func TestNonceBoundToSourceIP(t *testing.T) {
	h := newHarness(t, nil)
	res := h.do(t, h.register("127.0.0.1:5070", "1001", "sip:1001@127.0.0.1:5070", 300))
	req := h.register("127.0.0.3:5070", "1001", "sip:1001@127.0.0.1:5070", 300)
	if got := h.do(t, withAuth(req, answer(t, req, res, 0, "1001", "demo-1001", 1))); got.StatusCode != 401 {
		t.Fatalf("nonce used from another IP: want 401, got %s", got.Short())
	}
	if !strings.Contains(h.logs.String(), "reason=invalid_nonce") {
		t.Error("foreign nonce not logged")
	}
}

func TestMalformedCredentialsAndForgedNonce(t *testing.T) {
	h := newHarness(t, nil)
	src := "127.0.0.1:5070"
	for _, auth := range []string{
		`Basic dXNlcjpwYXNz`,
		`Digest username="1001"`,
		`Digest username="1001", realm="taxline", nonce="AAAA", uri="sip:127.0.0.1", response="00", qop=auth, nc=00000001, cnonce="x"`,
		`Digest username="1001", realm="other", nonce="AAAA", uri="sip:127.0.0.1", response="00"`,
		strings.Repeat("A", 10000),
	} {
		res := h.do(t, withAuth(h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300), auth))
		if res == nil || res.StatusCode != 401 {
			t.Errorf("%.40q: want 401, got %v", auth, res)
		}
	}
	if _, ok := h.r.Lookup("1001"); ok {
		t.Fatal("registered with junk credentials")
	}
}

func TestAORMismatchForbidden(t *testing.T) {
	h := newHarness(t, nil)
	src := "127.0.0.1:5070"
	res := h.do(t, h.register(src, "1002", "sip:1002@127.0.0.1:5070", 300))
	req := h.register(src, "1002", "sip:1002@127.0.0.1:5070", 300)
	// 1001's own password, used to register 1002's AOR.
	if got := h.do(t, withAuth(req, answer(t, req, res, 0, "1001", "demo-1001", 1))); got.StatusCode != 403 {
		t.Fatalf("want 403, got %s", got.Short())
	}
	if _, ok := h.r.Lookup("1002"); ok {
		t.Fatal("1001 registered 1002")
	}
}

func TestBanAfterFailures(t *testing.T) {
	cfg := testConfig(t)
	h := newHarness(t, cfg)
	bad := "127.0.0.2:5070"
	var chal *gosip.Response
	for i := 0; i < cfg.SIP.Registrar.FailureLimit; i++ {
		chal = h.do(t, h.register(bad, "1001", "sip:1001@127.0.0.2:5070", 300))
		if chal == nil {
			t.Fatalf("attempt %d dropped before the limit", i)
		}
		req := h.register(bad, "1001", "sip:1001@127.0.0.2:5070", 300)
		if res := h.do(t, withAuth(req, answer(t, req, chal, 0, "1001", fmt.Sprint("guess", i), 1))); res == nil || res.StatusCode != 401 {
			t.Fatalf("attempt %d: %v", i, res)
		}
	}
	if !h.r.Banned(bad) || !h.r.Banned("127.0.0.2") {
		t.Fatal("not banned after the failure limit")
	}
	if !strings.Contains(h.logs.String(), `msg="sip source banned" src=127.0.0.2`) {
		t.Errorf("ban not logged:\n%s", h.logs.String())
	}
	// Dropped silently now, even with the right password.
	req := h.register(bad, "1001", "sip:1001@127.0.0.2:5070", 300)
	if res := h.do(t, withAuth(req, answer(t, req, chal, 0, "1001", "demo-1001", 2))); res != nil {
		t.Fatalf("banned source got %s", res.Short())
	}
	// Another source is unaffected.
	if res := h.login(t, "127.0.0.1:5070", "1001", "demo-1001", "sip:1001@127.0.0.1:5070", 0); res.StatusCode != 200 {
		t.Fatalf("other source: %s", res.Short())
	}
	// The ban ends.
	h.clock.advance(cfg.SIP.Registrar.BanTime + time.Second)
	if h.r.Banned(bad) {
		t.Fatal("ban did not end")
	}
	if res := h.login(t, bad, "1001", "demo-1001", "sip:1001@127.0.0.2:5070", 0); res.StatusCode != 200 {
		t.Fatalf("after the ban: %s", res.Short())
	}
}

func TestFailuresOutsideWindowDoNotBan(t *testing.T) {
	cfg := testConfig(t)
	h := newHarness(t, cfg)
	bad := "127.0.0.2:5070"
	for i := 0; i < 3*cfg.SIP.Registrar.FailureLimit; i++ {
		h.clock.advance(cfg.SIP.Registrar.FailureWindow/time.Duration(cfg.SIP.Registrar.FailureLimit-1) + time.Second)
		h.do(t, withAuth(h.register(bad, "1001", "", -1), `Digest junk`))
	}
	if h.r.Banned(bad) {
		t.Fatal("banned for failures spread wider than the window")
	}
}

func TestTrunkSourceExempt(t *testing.T) {
	cfg := testConfig(t)
	h := newHarness(t, cfg)
	trunk := "127.0.0.9:5060"
	for i := 0; i < 3*cfg.SIP.Registrar.FailureLimit; i++ {
		if res := h.do(t, withAuth(h.register(trunk, "1001", "", -1), `Digest junk`)); res == nil {
			t.Fatalf("trunk source dropped at attempt %d", i)
		}
	}
	if h.r.Banned(trunk) {
		t.Fatal("trunk source banned")
	}
}

func TestRateLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.SIP.Registrar.RegisterRate, cfg.SIP.Registrar.RegisterBurst = 1, 5 // sip.registrar.register_rate, register_burst
	h := newHarness(t, cfg)
	src := "127.0.0.4:5070"
	answered := 0
	for i := 0; i < 20; i++ {
		if h.do(t, h.register(src, "1001", "", -1)) != nil {
			answered++
		}
	}
	if answered != 5 {
		t.Fatalf("answered %d of 20 at burst 5, want 5", answered)
	}
	if h.do(t, h.register("127.0.0.1:5070", "1001", "", -1)) == nil {
		t.Fatal("another source was limited")
	}
	h.clock.advance(2 * time.Second)
	if h.do(t, h.register(src, "1001", "", -1)) == nil {
		t.Fatal("bucket did not refill")
	}
}

func TestExpiresBoundsAndUnregister(t *testing.T) {
	h := newHarness(t, nil)
	src := "127.0.0.1:5070"
	reg := func(contact string, expires int) *gosip.Response {
		res := h.do(t, h.register(src, "1001", contact, expires))
		req := h.register(src, "1001", contact, expires)
		return h.do(t, withAuth(req, answer(t, req, res, 0, "1001", "demo-1001", 1)))
	}
	if res := reg("sip:1001@127.0.0.1:5070", 10); res.StatusCode != 423 || res.GetHeader("Min-Expires").Value() != "60" {
		t.Fatalf("expires 10: want 423 with Min-Expires 60, got %s", res)
	}
	reg("sip:1001@127.0.0.1:5070", 100000)
	b, _ := h.r.Lookup("1001")
	if got := b.Expires.Sub(h.clock.now()); got != time.Hour {
		t.Fatalf("expires clamped to %v, want 1h", got)
	}
	// A second phone; the newest rings.
	h.clock.advance(time.Second)
	reg("sip:1001@127.0.0.1:5072", 300)
	if b, _ := h.r.Lookup("1001"); b.Contact.Port != 5072 {
		t.Fatalf("Lookup = %v, want the newest contact", b.Contact)
	}
	if n := len(h.r.Bindings("1001")); n != 2 {
		t.Fatalf("%d bindings, want 2", n)
	}
	// Expires 0 removes one contact.
	reg("sip:1001@127.0.0.1:5072", 0)
	if b, _ := h.r.Lookup("1001"); b.Contact.Port != 5070 {
		t.Fatalf("after removing 5072: %v", b.Contact)
	}
	// A wildcard needs Expires: 0.
	if res := reg("*", 300); res.StatusCode != 400 {
		t.Fatalf("* with Expires 300: want 400, got %s", res.Short())
	}
	if res := reg("*", 0); res.StatusCode != 200 {
		t.Fatalf("* with Expires 0: %s", res.Short())
	}
	if _, ok := h.r.Lookup("1001"); ok {
		t.Fatal("still registered after Contact: *")
	}
}

func TestBadExpiresHeader(t *testing.T) {
	h := newHarness(t, nil)
	src := "127.0.0.1:5070"
	res := h.do(t, h.register(src, "1001", "sip:1001@127.0.0.1:5070", -1))
	req := h.register(src, "1001", "sip:1001@127.0.0.1:5070", -1)
	req.AppendHeader(gosip.NewHeader("Expires", "soon"))
	if got := h.do(t, withAuth(req, answer(t, req, res, 0, "1001", "demo-1001", 1))); got.StatusCode != 400 {
		t.Fatalf("Expires: soon: want 400, got %s", got.Short())
	}
}

// TestPresenceFollowsRegistration: Run tells the router when the phone
// comes (REGISTER) and goes (expiry, unregister).
func TestPresenceFollowsRegistration(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := newHarness(t, nil)
	h.r.tick = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.r.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	if res := h.login(t, "127.0.0.1:5070", "1001", "demo-1001", "sip:1001@127.0.0.1:5070", 0); res.StatusCode != 200 {
		t.Fatal(res.Short())
	}
	h.pres.wait(t, "1001=true")
	h.clock.advance(301 * time.Second) // the binding lapses
	h.pres.wait(t, "1001=false")

	h.login(t, "127.0.0.1:5070", "1002", "demo-1002", "sip:1002@127.0.0.1:5070", 1)
	h.pres.wait(t, "1002=true")
	res := h.do(t, h.register("127.0.0.1:5070", "1002", "*", 0))
	req := h.register("127.0.0.1:5070", "1002", "*", 0)
	if got := h.do(t, withAuth(req, answer(t, req, res, 0, "1002", "demo-1002", 1))); got.StatusCode != 200 {
		t.Fatal(got.Short())
	}
	h.pres.wait(t, "1002=false")
}

func TestReloadDropsRemovedAgentsAndChangesPassword(t *testing.T) {
	h := newHarness(t, nil)
	h.login(t, "127.0.0.1:5070", "1005", "demo-1005", "sip:1005@127.0.0.1:5070", 0)
	cfg := testConfig(t)
	cfg.Agents = cfg.Agents[:4]
	cfg.Agents[0].Password = "new-secret"
	h.r.Reload(cfg)
	if _, ok := h.r.Lookup("1005"); ok {
		t.Fatal("binding of a removed agent kept")
	}
	if res := h.login(t, "127.0.0.1:5070", "1001", "demo-1001", "sip:1001@127.0.0.1:5070", 0); res.StatusCode != 401 {
		t.Fatalf("old password after reload: %s", res.Short())
	}
	if res := h.login(t, "127.0.0.1:5071", "1001", "new-secret", "sip:1001@127.0.0.1:5071", 0); res.StatusCode != 200 {
		t.Fatalf("new password after reload: %s", res.Short())
	}
}

func TestCheckTrunkAuth(t *testing.T) {
	h := newHarness(t, nil)
	invite := func(auth string) (*gosip.Request, *gosip.Response, bool) {
		req := h.register("127.0.0.9:5060", "12366", "", -1)
		req.Method = gosip.INVITE
		req.CSeq().MethodName = gosip.INVITE
		if auth != "" {
			withAuth(req, auth)
		}
		tx := siptest.NewServerTxRecorder(req)
		defer tx.Terminate()
		ok := h.r.CheckTrunkAuth(req, tx, "trunkuser", "trunkpass")
		var res *gosip.Response
		if rs := tx.Result(); len(rs) > 0 {
			res = rs[len(rs)-1]
		}
		return req, res, ok
	}
	req, chal, ok := invite("")
	if ok || chal == nil || chal.StatusCode != 401 {
		t.Fatalf("no credentials: ok=%v res=%v", ok, chal)
	}
	if _, res, ok := invite(answer(t, req, chal, 0, "trunkuser", "wrong", 1)); ok || res.StatusCode != 403 {
		t.Fatalf("wrong password: ok=%v res=%v", ok, res)
	}
	if _, res, ok := invite(answer(t, req, chal, 1, "other", "trunkpass", 2)); ok || res.StatusCode != 403 {
		t.Fatalf("wrong user: ok=%v res=%v", ok, res)
	}
	if _, res, ok := invite(answer(t, req, chal, 1, "trunkuser", "trunkpass", 3)); !ok || res != nil {
		t.Fatalf("right credentials: ok=%v res=%v", ok, res)
	}
	if _, res, ok := invite(answer(t, req, chal, 1, "trunkuser", "trunkpass", 3)); ok || res.StatusCode != 403 {
		t.Fatalf("replayed nc: ok=%v res=%v", ok, res)
	}
}

func TestReadFilterDropsBanned(t *testing.T) {
	cfg := testConfig(t)
	h := newHarness(t, cfg)
	for i := 0; i < cfg.SIP.Registrar.FailureLimit; i++ {
		h.do(t, withAuth(h.register("127.0.0.2:5070", "1001", "", -1), "Digest junk"))
	}
	data := []byte("REGISTER sip:x SIP/2.0\r\n\r\n")
	out, err := h.r.ReadFilter(gosip.TransportReadProps{RemoteAddr: udpAddr("127.0.0.2:5070")}, data)
	if err != nil || out != nil {
		t.Fatalf("banned: %q, %v", out, err)
	}
	out, err = h.r.ReadFilter(gosip.TransportReadProps{RemoteAddr: udpAddr("127.0.0.1:5070")}, data)
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("not banned: %q, %v", out, err)
	}
}

func TestTablesAreSwept(t *testing.T) {
	h := newHarness(t, nil)
	for i := 0; i < 50; i++ {
		h.do(t, h.register(fmt.Sprintf("127.0.1.%d:5070", i), "1001", "", -1))
	}
	h.login(t, "127.0.0.1:5070", "1001", "demo-1001", "sip:1001@127.0.0.1:5070", 0)
	if h.r.guard.len() < 50 || h.r.nc.len() != 1 {
		t.Fatalf("guard %d, nc %d", h.r.guard.len(), h.r.nc.len())
	}
	h.clock.advance(time.Hour)
	now := h.clock.now()
	h.r.guard.sweep(now)
	h.r.nc.rotate(now, time.Minute)
	h.r.nc.rotate(now.Add(time.Minute), time.Minute)
	if h.r.guard.len() != 0 || h.r.nc.len() != 0 {
		t.Fatalf("after sweep: guard %d, nc %d", h.r.guard.len(), h.r.nc.len())
	}
}

func udpAddr(s string) net.Addr {
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		panic(err)
	}
	return a
}

// TestOfficeIPBansPerUser: at an IP with live phones (an office behind NAT)
// a phone with a wrong password is banned alone, not its neighbours.
func TestOfficeIPBansPerUser(t *testing.T) {
	cfg := testConfig(t)
	h := newHarness(t, cfg)
	office := "127.0.0.7"
	if res := h.login(t, office+":5070", "1001", "demo-1001", "sip:1001@127.0.0.7:5070", 0); res.StatusCode != 200 {
		t.Fatal(res.Short())
	}
	for i := 0; i < cfg.SIP.Registrar.FailureLimit; i++ {
		res := h.do(t, h.register(office+":5072", "1002", "sip:1002@127.0.0.7:5072", 300))
		if res == nil {
			t.Fatalf("attempt %d dropped", i)
		}
		req := h.register(office+":5072", "1002", "sip:1002@127.0.0.7:5072", 300)
		h.do(t, withAuth(req, answer(t, req, res, 0, "1002", "wrong", 1)))
	}
	if h.r.Banned(office + ":5072") {
		t.Fatal("the whole office IP was banned for one phone")
	}
	if h.do(t, h.register(office+":5072", "1002", "sip:1002@127.0.0.7:5072", 300)) != nil {
		t.Fatal("the failing user is not banned at the office IP")
	}
	if !strings.Contains(h.logs.String(), `msg="sip source banned for one user" src=127.0.0.7 user=1002`) {
		t.Errorf("per-user ban not logged:\n%s", h.logs.String())
	}
	if res := h.login(t, office+":5074", "1003", "demo-1003", "sip:1003@127.0.0.7:5074", 0); res.StatusCode != 200 {
		t.Fatalf("a neighbour: %s", res.Short())
	}
}

// TestMD5OnlyUserAgents: clients known to give up on a SHA-256-first
// challenge get MD5 alone; everyone else gets both, SHA-256 first.
func TestMD5OnlyUserAgents(t *testing.T) {
	h := newHarness(t, nil)
	for ua, want := range map[string]int{"": 2, "Yealink SIP-T46S 66.86": 2, "baresip v1.0.0 (x86_64/linux)": 1, "SIPp load": 1} {
		req := h.register("127.0.0.1:5070", "1001", "sip:1001@127.0.0.1:5070", 300)
		if ua != "" {
			req.AppendHeader(gosip.NewHeader("User-Agent", ua))
		}
		res := h.do(t, req)
		chs := res.GetHeaders("WWW-Authenticate")
		if len(chs) != want {
			t.Errorf("%q: %d challenges, want %d", ua, len(chs), want)
		}
		if want == 1 && !strings.Contains(chs[0].Value(), "algorithm=MD5") {
			t.Errorf("%q: %s", ua, chs[0].Value())
		}
	}
	// sip.registrar.md5_only_user_agents replaces the built-in list.
	cfg := testConfig(t)
	cfg.SIP.Registrar.MD5OnlyUserAgents = []string{"OldPhone/"}
	h = newHarness(t, cfg)
	for ua, want := range map[string]int{"OldPhone/2.1": 1, "SIPp load": 2} {
		req := h.register("127.0.0.1:5070", "1001", "sip:1001@127.0.0.1:5070", 300)
		req.AppendHeader(gosip.NewHeader("User-Agent", ua))
		if n := len(h.do(t, req).GetHeaders("WWW-Authenticate")); n != want {
			t.Errorf("configured list, %q: %d challenges, want %d", ua, n, want)
		}
	}
}

// BenchmarkHandleRegister is one whole digest registration through the
// registrar (REGISTER → 401, REGISTER with MD5 credentials → 200) on
// sipgo's types, without the network: the registrar's own CPU per
// registration, to set beside scripts/sip-load.sh's whole-process figure.
func BenchmarkHandleRegister(b *testing.B) {
	cfg := testConfig(b)
	cfg.SIP.Trunks[0].Sources = []string{"127.0.0.1/32"} // no rate limit for the load source
	h := newHarness(b, cfg)
	h.r.now = time.Now
	src := "127.0.0.1:5070"
	ha1 := algMD5.hexJoin("1001", "taxline", "demo-1001")
	b.ReportAllocs()
	for b.Loop() {
		req := h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300)
		req.AppendHeader(gosip.NewHeader("User-Agent", "SIPp load"))
		res := h.do(b, req)
		ch, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
		if err != nil {
			b.Fatal(err)
		}
		c := credentials{Username: "1001", Realm: "taxline", Nonce: ch.Nonce, URI: "sip:127.0.0.1", Algorithm: "MD5",
			Cnonce: "abc", QOP: "auth", NC: "00000001"}
		c.Response = algMD5.hexJoin(ha1, c.Nonce, c.NC, c.Cnonce, c.QOP, algMD5.hexJoin("REGISTER", c.URI))
		req = h.register(src, "1001", "sip:1001@127.0.0.1:5070", 300)
		if res := h.do(b, withAuth(req, c.String())); res.StatusCode != 200 {
			b.Fatal(res.Short())
		}
	}
}

// TestSecurityLogInjection: the user name is the attacker's; it must not
// forge a log line or a fail2ban match for someone else's address.
func TestSecurityLogInjection(t *testing.T) {
	h := newHarness(t, nil)
	evil := `x level=WARN msg="sip auth failure" src=192.0.2.99 `
	res := h.do(t, h.register("127.0.0.6:5099", "1003", "sip:1003@127.0.0.6:5099", 300))
	req := h.register("127.0.0.6:5099", "1003", "sip:1003@127.0.0.6:5099", 300)
	auth := answer(t, req, res, 0, "1003", "bad", 1)
	auth = strings.Replace(auth, `username="1003"`, `username=`+quoteString(evil), 1)
	h.do(t, withAuth(req, auth))
	logs := h.logs.String()
	if !strings.Contains(logs, "sip auth failure") {
		t.Fatalf("no failure logged:\n%s", logs)
	}
	if !strings.Contains(logs, "192.0.2.99") {
		t.Fatalf("the test did not get the evil name logged:\n%s", logs)
	}
	// fail2ban's failregex starts with ^.* and is greedy: it would take the
	// last match on the line.
	greedy := regexp.MustCompile(`^.*` + fail2banRegex.String())
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		for _, re := range []*regexp.Regexp{fail2banRegex, greedy} {
			if m := re.FindStringSubmatch(l); m != nil && m[1] != "127.0.0.6" {
				t.Fatalf("forged log line matched for %s: %q", m[1], l)
			}
		}
	}
}

// TestOutOfOrderLeavesBindingsWhole: RFC 3261 §10.3 step 7 refuses an
// older request of the same registration; a refusal half way through a
// multi-contact REGISTER must leave the stored bindings as they were.
func TestOutOfOrderLeavesBindingsWhole(t *testing.T) {
	h := newHarness(t, nil)
	src := "127.0.0.1:5070"
	if res := h.login(t, src, "1001", "demo-1001", "sip:1001@127.0.0.1:5070", 0); res.StatusCode != 200 {
		t.Fatal(res.Short())
	}
	res := h.do(t, h.register(src, "1001", "", -1))
	req := h.register(src, "1001", "sip:1001@127.0.0.1:5071", 300)
	var old gosip.ContactHeader
	if err := gosip.ParseUri("sip:1001@127.0.0.1:5070", &old.Address); err != nil {
		t.Fatal(err)
	}
	req.AppendHeader(&old)
	req.CSeq().SeqNo = 1 // older than the stored registration
	if got := h.do(t, withAuth(req, answer(t, req, res, 0, "1001", "demo-1001", 1))); got.StatusCode != 500 {
		t.Fatalf("out of order: %s", got.Short())
	}
	bs := h.r.Bindings("1001")
	if len(bs) != 1 || bs[0].Contact.Port != 5070 {
		t.Fatalf("bindings after a refused REGISTER: %+v", bs)
	}
	if h.r.fromIP[netip.MustParseAddr("127.0.0.1")] != 1 {
		t.Fatalf("fromIP = %v", h.r.fromIP)
	}
}
