package sip

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzParseCredentials feeds the Authorization header parser arbitrary
// header values. It must never panic, must accept only what it can write
// back unchanged, and a check of what it accepts must never succeed
// without the secret. The seed corpus is in testdata/fuzz/FuzzParseCredentials.
func FuzzParseCredentials(f *testing.F) {
	f.Add(`Digest username="1001", realm="taxline", nonce="abc", uri="sip:127.0.0.1", response="0123", algorithm=SHA-256, cnonce="xyz", qop=auth, nc=00000001`)
	f.Add(`Digest username="1001",realm="taxline",nonce="n",uri="sip:x",response="r",algorithm=MD5,qop="auth",nc=00000002,cnonce="c",opaque=""`)
	f.Add("digest username=\"a\\\"b\", nonce=\"n\", uri=\"u\", response=\"r\",")
	f.Add(`Digest username="1`)
	f.Add(`Basic Zm9vOmJhcg==`)
	n := newNonceMaker()
	ip := netip.MustParseAddr("127.0.0.1")
	now := time.Now()
	secret := newSecretHashes("1001", "taxline", "demo-1001")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := parseCredentials(in)
		if err != nil {
			return
		}
		again, err := parseCredentials(c.String())
		if err != nil {
			t.Fatalf("String() of %+v does not parse: %v", c, err)
		}
		if again != c {
			t.Fatalf("round trip changed %+v into %+v", c, again)
		}
		// Random input never carries a valid nonce for our secret.
		if res, _, _, _ := digestCheck(n, c, "REGISTER", "taxline", secret, true, ip, now, time.Minute); res == authOK || res == authStale {
			t.Fatalf("fuzzed credentials %+v verified", c)
		}
	})
}
