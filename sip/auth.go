package sip

// SIP digest authentication, server side: RFC 3261 §22 with the RFC 7616
// rules (qop=auth, nonce counts) and the RFC 8760 algorithms (SHA-256 first,
// MD5 for older phones).
//
// Nonces are stateless: base64url(issued || seq || HMAC-SHA256(secret,
// issued || seq || source IP)). The server keeps no state per challenge, so a scanner that
// collects challenges costs nothing. Only after a response verifies does the
// nonce get a slot in ncTracker, which refuses a nonce count that does not
// increase (RFC 7616 §3.4: replay protection).

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBadCredentials is returned (wrapped) by the Authorization header parser
// for anything that is not a well-formed digest response.
var ErrBadCredentials = errors.New("sip: malformed digest credentials")

// Limits on what the parser accepts from outside. A real phone's
// Authorization header is about 300 bytes.
const (
	maxCredentialsLen    = 4096
	maxCredentialsParams = 32
)

// algorithm is a digest hash algorithm (RFC 8760 §2).
type algorithm uint8

// Digest algorithms, in the order they are offered.
const (
	algUnknown algorithm = iota
	algSHA256
	algMD5
)

func (a algorithm) String() string {
	switch a {
	case algSHA256:
		return "SHA-256"
	case algMD5:
		return "MD5"
	}
	return "unknown"
}

// parseAlgorithm maps the algorithm parameter to an algorithm. An absent
// parameter means MD5 (RFC 2617 §3.2.1). The -sess variants are not offered
// and so not accepted.
func parseAlgorithm(s string) algorithm {
	switch {
	case s == "" || strings.EqualFold(s, "MD5"):
		return algMD5
	case strings.EqualFold(s, "SHA-256"):
		return algSHA256
	}
	return algUnknown
}

func (a algorithm) new() hash.Hash {
	if a == algSHA256 {
		return sha256.New()
	}
	return md5.New()
}

// hexJoin returns the lower-case hex digest of the parts joined by ':',
// the H(a:b:c) of RFC 7616 §3.4.
func (a algorithm) hexJoin(parts ...string) string {
	h := a.new()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// credentials is a parsed digest Authorization (or Proxy-Authorization)
// header value (RFC 7616 §3.4).
type credentials struct {
	Username  string
	Realm     string
	Nonce     string
	URI       string
	Response  string
	Algorithm string
	Cnonce    string
	Opaque    string
	QOP       string
	NC        string
}

// parseCredentials parses a digest Authorization header value:
//
//	Digest username="1001", realm="taxline", nonce="...", uri="sip:...",
//	       response="...", algorithm=SHA-256, cnonce="...", qop=auth, nc=00000001
//
// It is the only parser in the registrar that reads attacker-controlled
// bytes directly, so it is strict about size and shape, and fuzzed.
// Unknown parameters are ignored (RFC 7616 §3.4); a repeated known one is an
// error.
func parseCredentials(s string) (credentials, error) {
	var c credentials
	if len(s) > maxCredentialsLen {
		return c, fmt.Errorf("%w: %d bytes", ErrBadCredentials, len(s))
	}
	s = strings.TrimLeft(s, " \t")
	scheme, rest, _ := strings.Cut(s, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return c, fmt.Errorf("%w: scheme is not Digest", ErrBadCredentials)
	}
	seen := 0 // bit set of known parameters already read
	for n := 0; ; n++ {
		rest = strings.TrimLeft(rest, " \t\r\n")
		if rest == "" {
			break
		}
		if n >= maxCredentialsParams {
			return c, fmt.Errorf("%w: too many parameters", ErrBadCredentials)
		}
		var name, value string
		var err error
		name, value, rest, err = nextParam(rest)
		if err != nil {
			return c, err
		}
		var field *string
		bit := 0
		switch strings.ToLower(name) {
		case "username":
			field, bit = &c.Username, 1
		case "realm":
			field, bit = &c.Realm, 2
		case "nonce":
			field, bit = &c.Nonce, 3
		case "uri":
			field, bit = &c.URI, 4
		case "response":
			field, bit = &c.Response, 5
		case "algorithm":
			field, bit = &c.Algorithm, 6
		case "cnonce":
			field, bit = &c.Cnonce, 7
		case "opaque":
			field, bit = &c.Opaque, 8
		case "qop":
			field, bit = &c.QOP, 9
		case "nc":
			field, bit = &c.NC, 10
		}
		if field != nil {
			if seen&(1<<bit) != 0 {
				return c, fmt.Errorf("%w: repeated %s", ErrBadCredentials, strings.ToLower(name))
			}
			seen |= 1 << bit
			*field = value
		}
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" {
		return c, fmt.Errorf("%w: username, nonce, uri and response are required", ErrBadCredentials)
	}
	return c, nil
}

// nextParam reads one `name = value` (value a token or quoted-string) and
// the comma after it, returning what is left.
func nextParam(s string) (name, value, rest string, err error) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", "", fmt.Errorf("%w: expected a parameter name", ErrBadCredentials)
	}
	name, s = s[:i], strings.TrimLeft(s[i:], " \t")
	if s == "" || s[0] != '=' {
		return "", "", "", fmt.Errorf("%w: parameter %q has no value", ErrBadCredentials, name)
	}
	s = strings.TrimLeft(s[1:], " \t")
	if s != "" && s[0] == '"' {
		var b strings.Builder
		j := 1
		closed := false
		for j < len(s) {
			ch := s[j]
			if ch == '\\' && j+1 < len(s) {
				ch = s[j+1]
				if ch < 0x20 && ch != '\t' || ch == 0x7f {
					return "", "", "", fmt.Errorf("%w: control character in %s", ErrBadCredentials, name)
				}
				b.WriteByte(ch)
				j += 2
				continue
			}
			if ch == '"' {
				closed = true
				j++
				break
			}
			if ch < 0x20 && ch != '\t' || ch == 0x7f {
				return "", "", "", fmt.Errorf("%w: control character in %s", ErrBadCredentials, name)
			}
			b.WriteByte(ch)
			j++
		}
		if !closed {
			return "", "", "", fmt.Errorf("%w: unterminated quoted %s", ErrBadCredentials, name)
		}
		value, s = b.String(), s[j:]
	} else {
		j := 0
		for j < len(s) && isTokenChar(s[j]) {
			j++
		}
		if j == 0 {
			return "", "", "", fmt.Errorf("%w: parameter %q has no value", ErrBadCredentials, name)
		}
		value, s = s[:j], s[j:]
	}
	s = strings.TrimLeft(s, " \t\r\n")
	switch {
	case s == "":
	case s[0] == ',':
		s = s[1:]
	default:
		return "", "", "", fmt.Errorf("%w: expected ',' after %s", ErrBadCredentials, name)
	}
	return name, value, s, nil
}

// isTokenChar reports whether c may appear in an RFC 3261 §25.1 token.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// quoteString makes s an RFC 3261 quoted-string.
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// String formats c as a header value that parseCredentials reads back.
// Tests use it as a client would.
func (c credentials) String() string {
	var b strings.Builder
	b.WriteString("Digest ")
	first := true
	add := func(name, value string, quote bool) {
		if value == "" {
			return
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(name)
		b.WriteByte('=')
		if quote || !isToken(value) {
			b.WriteString(quoteString(value))
			return
		}
		b.WriteString(value)
	}
	add("username", c.Username, true)
	add("realm", c.Realm, true)
	add("nonce", c.Nonce, true)
	add("uri", c.URI, true)
	add("response", c.Response, true)
	add("algorithm", c.Algorithm, false)
	add("cnonce", c.Cnonce, true)
	add("opaque", c.Opaque, true)
	add("qop", c.QOP, false)
	add("nc", c.NC, false)
	return b.String()
}

// nonceLen is the decoded nonce: 8 bytes of issue time (Unix nanoseconds,
// big-endian), 8 bytes of a per-process counter (so two challenges in the
// same clock tick differ), and 32 bytes of HMAC-SHA256 over both and the
// source IP.
const nonceLen = 16 + sha256.Size

// nonceMaker issues and checks stateless nonces bound to a source IP.
// Its secret is random per process: a restart makes old nonces invalid, and
// phones simply get a fresh challenge.
type nonceMaker struct {
	secret [32]byte
	seq    atomic.Uint64
}

func newNonceMaker() *nonceMaker {
	n := new(nonceMaker)
	_, _ = rand.Read(n.secret[:]) // crypto/rand.Read never fails on Linux.
	return n
}

func (n *nonceMaker) mac(head []byte, ip netip.Addr) []byte {
	m := hmac.New(sha256.New, n.secret[:])
	m.Write(head)
	a := ip.Unmap().As16()
	m.Write(a[:])
	return m.Sum(nil)
}

// make returns a fresh nonce for a challenge sent to ip at now.
func (n *nonceMaker) make(now time.Time, ip netip.Addr) string {
	var raw [nonceLen]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(now.UnixNano()))
	binary.BigEndian.PutUint64(raw[8:16], n.seq.Add(1))
	copy(raw[16:], n.mac(raw[:16], ip))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// nonceState is what checking a nonce found.
type nonceState uint8

const (
	nonceInvalid nonceState = iota // not ours, not for this IP, or from the future
	nonceFresh
	nonceStale // ours, but older than the lifetime: challenge again with stale=true
)

// check verifies that nonce was issued by this process to ip, and whether it
// is still within lifetime at now. It returns the nonce's key for
// ncTracker.
func (n *nonceMaker) check(nonce string, now time.Time, ip netip.Addr, lifetime time.Duration) (nonceState, nonceKey) {
	var raw [nonceLen]byte
	var key nonceKey
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceLen {
		return nonceInvalid, key
	}
	if _, err := base64.RawURLEncoding.Decode(raw[:], []byte(nonce)); err != nil {
		return nonceInvalid, key
	}
	if !hmac.Equal(raw[16:], n.mac(raw[:16], ip)) {
		return nonceInvalid, key
	}
	copy(key[:], raw[16:])
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	switch age := now.Sub(issued); {
	case age < -time.Second: // a little clock slack between goroutines
		return nonceInvalid, key
	case age > lifetime:
		return nonceStale, key
	}
	return nonceFresh, key
}

// maxTrackedNonces bounds ncTracker. Entries only come from verified
// responses, so reaching it takes a great many real registrations within a
// nonce lifetime; past it new nonces are refused (the phone is challenged
// again) rather than tracked unsafely. An entry is about 40 bytes.
const maxTrackedNonces = 1 << 20

// nonceKey identifies a nonce in ncTracker: the first half of its HMAC,
// unique for all practical purposes and a fixed size.
type nonceKey [16]byte

// ncTracker remembers the highest nonce count used with each nonce that has
// verified, for at least a nonce lifetime (RFC 7616 §3.4: "nc" must
// increase). It keeps two generations and drops the older one whole every
// lifetime, so forgetting costs nothing per entry: an entry written in the
// current generation lives at least one full lifetime, and after that its
// nonce is stale and can no longer verify.
type ncTracker struct {
	mu      sync.Mutex // guards the fields below
	cur     map[nonceKey]uint32
	prev    map[nonceKey]uint32
	rotated time.Time
}

func newNCTracker() *ncTracker {
	return &ncTracker{cur: make(map[nonceKey]uint32), prev: make(map[nonceKey]uint32)}
}

// advance records nc for the nonce k and reports whether it is higher
// than any count seen with that nonce before.
func (t *ncTracker) advance(k nonceKey, nc uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, ok := t.cur[k]
	if !ok {
		last, ok = t.prev[k]
	}
	if ok && nc <= last {
		return false
	}
	if len(t.cur)+len(t.prev) >= maxTrackedNonces {
		return false
	}
	t.cur[k] = nc
	return true
}

// rotate drops the older generation when lifetime has passed since the
// last rotation.
func (t *ncTracker) rotate(now time.Time, lifetime time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.rotated) < lifetime {
		return
	}
	t.prev, t.cur, t.rotated = t.cur, make(map[nonceKey]uint32, len(t.cur)), now
}

func (t *ncTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cur) + len(t.prev)
}

// secretHashes holds one user's H(username:realm:password) for each
// algorithm, so a REGISTER costs two hashes, not three.
type secretHashes struct {
	sha256 string
	md5    string
}

func newSecretHashes(user, realm, password string) secretHashes {
	return secretHashes{
		sha256: algSHA256.hexJoin(user, realm, password),
		md5:    algMD5.hexJoin(user, realm, password),
	}
}

func (s secretHashes) get(a algorithm) string {
	if a == algSHA256 {
		return s.sha256
	}
	return s.md5
}

// authResult is the outcome of checking one Authorization header.
type authResult uint8

const (
	authUnknown authResult = iota
	authOK
	authStale // a valid response on an expired nonce: challenge with stale=true
	authFailed
)

// failReason says why an authentication failed, for the security log.
type failReason uint8

// Failure reasons. They are logged, never sent: every one of them gets the
// same response on the wire.
const (
	reasonNone failReason = iota
	reasonMalformed
	reasonRealm
	reasonAlgorithm
	reasonQOP
	reasonNonce
	reasonUnknownUser
	reasonWrongPassword
	reasonReplay
	reasonAORMismatch
)

var failReasonNames = [...]string{"none", "malformed_credentials", "wrong_realm", "unsupported_algorithm",
	"unsupported_qop", "invalid_nonce", "unknown_user", "wrong_password", "nonce_count_replay", "aor_mismatch"}

func (r failReason) String() string {
	if int(r) < len(failReasonNames) {
		return failReasonNames[r]
	}
	return "reason(?)"
}

// digestCheck verifies credentials c for method against the secret hashes
// of the claimed user (known false: the dummy's, so the work and the
// answer are the same as for a wrong password). It does not touch nc
// tracking; the caller does that once the response is known to be right.
func digestCheck(n *nonceMaker, c credentials, method, realm string, secret secretHashes, known bool,
	ip netip.Addr, now time.Time, lifetime time.Duration) (authResult, failReason, nonceKey, uint32) {
	var key nonceKey
	alg := parseAlgorithm(c.Algorithm)
	// Checks that do not depend on the user come first, so that an
	// unknown user and a known one take the same path through the rest.
	switch {
	case c.Realm != realm:
		return authFailed, reasonRealm, key, 0
	case alg == algUnknown:
		return authFailed, reasonAlgorithm, key, 0
	case c.QOP != "auth":
		// qop=auth is offered and required: without it there is no nonce
		// count and no replay protection.
		return authFailed, reasonQOP, key, 0
	case len(c.NC) != 8:
		return authFailed, reasonMalformed, key, 0
	}
	nc, err := strconv.ParseUint(c.NC, 16, 32)
	if err != nil {
		return authFailed, reasonMalformed, key, 0
	}
	state, key := n.check(c.Nonce, now, ip, lifetime)
	if state == nonceInvalid {
		return authFailed, reasonNonce, key, 0
	}
	ha2 := alg.hexJoin(method, c.URI)
	want := alg.hexJoin(secret.get(alg), c.Nonce, c.NC, c.Cnonce, c.QOP, ha2)
	got := strings.ToLower(c.Response)
	match := subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
	switch {
	case !known:
		return authFailed, reasonUnknownUser, key, 0
	case !match:
		return authFailed, reasonWrongPassword, key, 0
	case state == nonceStale:
		return authStale, reasonNone, key, 0
	}
	return authOK, reasonNone, key, uint32(nc)
}

// challenges returns the WWW-Authenticate values for a 401: SHA-256 first,
// then MD5 (RFC 8760 §2.4: the client uses the first it supports), or MD5
// alone when md5Only.
func challenges(realm, nonce string, stale, md5Only bool) []string {
	algs := []algorithm{algSHA256, algMD5}
	if md5Only {
		algs = algs[1:]
	}
	out := make([]string, 0, len(algs))
	for _, a := range algs {
		s := `Digest realm=` + quoteString(realm) + `, nonce="` + nonce + `", algorithm=` + a.String() + `, qop="auth"`
		if stale {
			s += ", stale=true"
		}
		out = append(out, s)
	}
	return out
}

// DefaultMD5OnlyUserAgents returns the User-Agent prefixes of clients that give up
// on a challenge whose first algorithm they do not know, instead of moving
// on to the next one as RFC 8760 §2.4 asks. Both were seen failing here:
// baresip 1.0 (libre: "Register: Function not implemented") and SIPp 3.6
// ("authentication must use MD5 or AKAv1-MD5"). They get the MD5 challenge
// alone. This is no downgrade an attacker can force on someone else: the
// choice follows the requesting client's own header, and a man in the
// middle could strip the SHA-256 challenge anyway.
func DefaultMD5OnlyUserAgents() []string {
	return []string{"baresip v0.", "baresip v1.", "SIPp"}
}

// md5Only reports whether userAgent starts with one of prefixes.
func md5Only(userAgent string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(userAgent, p) {
			return true
		}
	}
	return false
}
