package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/taxline/taxline/config"
)

// Principal is who made a request.
type Principal struct {
	Name  string
	Role  config.Role
	Agent string // for the agent role: the agent it acts as
}

// Actor is the principal as an event actor, for the audit log.
func (p Principal) Actor() string {
	if p.Role == config.RoleAgent && p.Agent != "" {
		return "agent:" + p.Agent
	}
	return "token:" + p.Name
}

// can reports whether the principal's role is one of roles.
func (p Principal) can(roles ...config.Role) bool {
	for _, r := range roles {
		if p.Role == r {
			return true
		}
	}
	return false
}

// tokens checks bearer tokens: the configured ones (stored as SHA-256
// digests) and the session tokens /api/v1/login issued.
type tokens struct {
	mu       sync.Mutex // guards cfg and sessions
	cfg      []config.Token
	sessions map[[32]byte]session
	ttl      time.Duration
}

type session struct {
	p       Principal
	expires time.Time
}

func newTokens(cfg []config.Token) *tokens {
	return &tokens{cfg: cfg, sessions: map[[32]byte]session{}, ttl: 12 * time.Hour}
}

func (t *tokens) reload(cfg []config.Token) {
	t.mu.Lock()
	t.cfg = cfg
	t.mu.Unlock()
}

// lookup finds the principal for a raw bearer token.
func (t *tokens) lookup(raw string, now time.Time) (Principal, bool) {
	sum := sha256.Sum256([]byte(raw))
	t.mu.Lock()
	defer t.mu.Unlock()
	found := false
	var p Principal
	for _, tok := range t.cfg {
		want, err := hex.DecodeString(tok.SHA256)
		if err != nil || len(want) != len(sum) {
			continue
		}
		// Compare every configured token so the time taken does not say
		// which one matched.
		if subtle.ConstantTimeCompare(want, sum[:]) == 1 {
			found = true
			p = Principal{Name: tok.Name, Role: tok.Role, Agent: tok.Agent}
		}
	}
	if found {
		return p, true
	}
	if s, ok := t.sessions[sum]; ok {
		if now.Before(s.expires) {
			return s.p, true
		}
		delete(t.sessions, sum)
	}
	return Principal{}, false
}

// issue makes a session token for p.
func (t *tokens) issue(p Principal, now time.Time) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	raw := hex.EncodeToString(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, s := range t.sessions {
		if now.After(s.expires) {
			delete(t.sessions, k)
		}
	}
	t.sessions[sha256.Sum256([]byte(raw))] = session{p: p, expires: now.Add(t.ttl)}
	return raw
}

// bearer extracts the token of an Authorization header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return strings.TrimSpace(tok), ok && strings.TrimSpace(tok) != ""
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func subtleEq(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
