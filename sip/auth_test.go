package sip

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

func TestParseCredentials(t *testing.T) {
	good := []struct {
		in   string
		want credentials
	}{
		{
			`Digest username="1001", realm="taxline", nonce="abc", uri="sip:127.0.0.1", response="0123", algorithm=SHA-256, cnonce="xyz", qop=auth, nc=00000001`,
			credentials{Username: "1001", Realm: "taxline", Nonce: "abc", URI: "sip:127.0.0.1", Response: "0123", Algorithm: "SHA-256", Cnonce: "xyz", QOP: "auth", NC: "00000001"},
		},
		{ // lower-case scheme, odd spacing, quoted token values, unknown parameter
			"digest   username = \"a\\\"b\" ,realm=\"r\",nonce=\"n\",uri=\"u\",response=\"r0\",qop=\"auth\",userhash=false , opaque=\"\"",
			credentials{Username: `a"b`, Realm: "r", Nonce: "n", URI: "u", Response: "r0", QOP: "auth"},
		},
		{ // a trailing comma is tolerated
			`Digest username="1", nonce="n", uri="u", response="r",`,
			credentials{Username: "1", Nonce: "n", URI: "u", Response: "r"},
		},
	}
	for _, tc := range good {
		got, err := parseCredentials(tc.in)
		if err != nil {
			t.Errorf("parseCredentials(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseCredentials(%q) =\n %+v, want\n %+v", tc.in, got, tc.want)
		}
	}
	bad := []string{
		``,
		`Basic dXNlcjpwYXNz`,
		`Digest`,
		`Digest username="1001"`, // required parameters missing
		`Digest username="1", username="2", nonce="n", uri="u", response="r"`,
		`Digest username="1, nonce="n", uri="u", response="r"`, // unterminated
		`Digest username=, nonce="n", uri="u", response="r"`,
		`Digest username="1" nonce="n", uri="u", response="r"`, // missing comma
		`Digest =x, username="1", nonce="n", uri="u", response="r"`,
		"Digest username=\"1\x00\", nonce=\"n\", uri=\"u\", response=\"r\"",
		"Digest username=\"1\\\x01\", nonce=\"n\", uri=\"u\", response=\"r\"",
		`Digest username="1", nonce="n", uri="u", response="r", ` + strings.Repeat(`x=1, `, 40),
		`Digest username="` + strings.Repeat("a", 5000) + `", nonce="n", uri="u", response="r"`,
	}
	for _, in := range bad {
		if c, err := parseCredentials(in); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("parseCredentials(%.60q) = %+v, %v; want ErrBadCredentials", in, c, err)
		}
	}
}

// TestCredentialsRoundTrip: what the parser reads, String writes back
// unchanged; and the parser reads what a real client library writes.
func TestCredentialsRoundTrip(t *testing.T) {
	for _, alg := range []string{"SHA-256", "MD5"} {
		cred, err := digest.Digest(&digest.Challenge{Realm: "taxline", Nonce: "n0nce", Algorithm: alg, QOP: []string{"auth"}},
			digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1:5060", Username: "1001", Password: "demo-1001", Count: 7})
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCredentials(cred.String())
		if err != nil {
			t.Fatalf("%s: %v", cred, err)
		}
		if c.Username != "1001" || c.NC != "00000007" || c.Algorithm != alg || c.Response != cred.Response {
			t.Errorf("parsed %+v from %s", c, cred)
		}
		again, err := parseCredentials(c.String())
		if err != nil || again != c {
			t.Errorf("round trip: %+v, %v; want %+v", again, err, c)
		}
	}
}

func TestNonce(t *testing.T) {
	n := newNonceMaker()
	ip := netip.MustParseAddr("127.0.0.1")
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	a, b := n.make(t0, ip), n.make(t0, ip)
	if a == b {
		t.Fatal("two nonces in one tick are equal")
	}
	cases := []struct {
		name  string
		nonce string
		at    time.Time
		ip    string
		want  nonceState
	}{
		{"fresh", a, t0.Add(time.Minute), "127.0.0.1", nonceFresh},
		{"mapped IPv4 is the same IP", a, t0, "::ffff:127.0.0.1", nonceFresh},
		{"stale", a, t0.Add(6 * time.Minute), "127.0.0.1", nonceStale},
		{"other IP", a, t0, "127.0.0.2", nonceInvalid},
		{"from the future", a, t0.Add(-time.Minute), "127.0.0.1", nonceInvalid},
		{"tampered", a[:10] + "A" + a[11:], t0, "127.0.0.1", nonceInvalid},
		{"short", a[:20], t0, "127.0.0.1", nonceInvalid},
		{"not base64", strings.Repeat("!", len(a)), t0, "127.0.0.1", nonceInvalid},
		{"other secret", newNonceMaker().make(t0, ip), t0, "127.0.0.1", nonceInvalid},
	}
	for _, tc := range cases {
		if tc.name == "tampered" && tc.nonce == a {
			continue
		}
		got, _ := n.check(tc.nonce, tc.at, netip.MustParseAddr(tc.ip), 5*time.Minute)
		if got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNCTracker(t *testing.T) {
	tr := newNCTracker()
	t0 := time.Unix(1000, 0)
	tr.rotate(t0, time.Minute)
	a, b := nonceKey{1}, nonceKey{2}
	steps := []struct {
		key  nonceKey
		nc   uint32
		want bool
	}{{a, 1, true}, {a, 1, false}, {a, 3, true}, {a, 2, false}, {b, 1, true}, {a, 4, true}}
	for i, s := range steps {
		if got := tr.advance(s.key, s.nc); got != s.want {
			t.Errorf("step %d: advance(%v, %d) = %v", i, s.key[0], s.nc, got)
		}
	}
	tr.rotate(t0.Add(30*time.Second), time.Minute) // too soon: nothing dropped
	tr.rotate(t0.Add(time.Minute), time.Minute)    // a and b move to the old generation
	if tr.advance(a, 4) {
		t.Error("replay accepted after one rotation: the entry must live a full lifetime")
	}
	tr.rotate(t0.Add(2*time.Minute), time.Minute)
	tr.rotate(t0.Add(3*time.Minute), time.Minute)
	if tr.len() != 0 {
		t.Fatalf("%d left after two rotations", tr.len())
	}
}

// BenchmarkDigestVerify is the CPU of one digest check (parse, nonce HMAC,
// two hashes), the registrar's share of a REGISTER beyond sipgo's parsing.
func BenchmarkDigestVerify(b *testing.B) {
	n := newNonceMaker()
	ip := netip.MustParseAddr("127.0.0.1")
	now := time.Now()
	nonce := n.make(now, ip)
	secret := newSecretHashes("1001", "taxline", "demo-1001")
	cred, err := digest.Digest(&digest.Challenge{Realm: "taxline", Nonce: nonce, Algorithm: "SHA-256", QOP: []string{"auth"}},
		digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1:5060", Username: "1001", Password: "demo-1001", Count: 1})
	if err != nil {
		b.Fatal(err)
	}
	hv := cred.String()
	b.ReportAllocs()
	for b.Loop() {
		c, err := parseCredentials(hv)
		if err != nil {
			b.Fatal(err)
		}
		if res, _, _, _ := digestCheck(n, c, "REGISTER", "taxline", secret, true, ip, now, time.Minute); res != authOK {
			b.Fatal(res)
		}
	}
}
