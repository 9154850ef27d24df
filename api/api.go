// Package api is taxline's HTTP API: health, Prometheus metrics,
// interactions with their events and transcripts, recordings, reports and
// agent login, behind bearer tokens with roles. Every read of a recording
// or a transcript is written to the audit log (an Audit event).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taxline/taxline/chat"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/storage"
)

// Store is what the API reads from the event store.
type Store interface {
	Lister
	Interaction(id interaction.ID) (interaction.Record, error)
	Events(id interaction.ID) ([]interaction.Event, error)
	Append(ctx context.Context, evs ...interaction.Event) error
	Blobs() storage.Blobs
	Healthy() error
}

// Router is what the API asks of the ACD.
type Router interface {
	Snapshot(ctx context.Context) (queue.Snapshot, error)
	Transfer(ctx context.Context, id interaction.ID, target, reason, actor string) error
	AckTicket(ctx context.Context, id interaction.ID, agent string) error
	AnswerTicket(ctx context.Context, id interaction.ID, a queue.TicketAnswer) error
}

var _ Router = (*queue.Router)(nil)

// Server serves the API.
type Server struct {
	store   Store
	router  Router
	log     *slog.Logger
	tokens  *tokens
	mux     *http.ServeMux
	metrics *Metrics
	now     func() time.Time

	mu     sync.RWMutex // guards cfg and checks
	cfg    *config.Config
	checks []healthCheck
}

type healthCheck struct {
	name  string
	check func() error
}

// AddHealthCheck makes /healthz also depend on check (a listener, say).
func (s *Server) AddHealthCheck(name string, check func() error) {
	s.mu.Lock()
	s.checks = append(s.checks, healthCheck{name, check})
	s.mu.Unlock()
}

// New builds the API server. metrics may be nil.
func New(cfg *config.Config, store Store, router Router, metrics *Metrics, log *slog.Logger) *Server {
	s := &Server{store: store, router: router, log: log, tokens: newTokens(cfg.Auth.Tokens), cfg: cfg,
		metrics: metrics, now: time.Now, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	if metrics != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	}
	s.mux.HandleFunc("POST /api/v1/login", s.login)
	s.mux.HandleFunc("GET /api/v1/interactions", s.auth(s.listInteractions))
	s.mux.HandleFunc("GET /api/v1/interactions/{id}", s.auth(s.getInteraction))
	s.mux.HandleFunc("POST /api/v1/interactions/{id}/transfer", s.auth(s.transfer))
	s.mux.HandleFunc("GET /api/v1/recordings/{id}", s.auth(s.getRecording))
	s.mux.HandleFunc("GET /api/v1/queues", s.auth(s.queues))
	s.mux.HandleFunc("GET /api/v1/reports/monthly", s.auth(s.monthly))
	// GET /api/v1/tickets, POST /api/v1/tickets/{id}/ack and /answer (tickets.go)
	s.mountTickets()
	s.mountStats() // GET /api/v1/stats/today, GET /api/v1/config (stats.go)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API path")
	})
	return s
}

// Handle mounts another handler (the reports, the pages, the WebSockets) on
// the same mux.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleAuth mounts a handler behind bearer-token auth for the given roles.
func (s *Server) HandleAuth(pattern string, h func(w http.ResponseWriter, r *http.Request, p Principal), roles ...config.Role) {
	s.mux.HandleFunc(pattern, s.auth(func(w http.ResponseWriter, r *http.Request, p Principal) {
		if !p.can(roles...) {
			writeError(w, http.StatusForbidden, "role "+string(p.Role)+" may not do this")
			return
		}
		h(w, r, p)
	}))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Reload takes a new config (tokens, agents).
func (s *Server) Reload(cfg *config.Config) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	s.tokens.reload(cfg.Auth.Tokens)
}

func (s *Server) config() *config.Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

// auth wraps a handler with bearer-token authentication.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request, Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="taxline"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		p, ok := s.tokens.lookup(raw, s.now())
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="taxline", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid token")
			return
		}
		h(w, r, p)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if _, err := s.router.Snapshot(ctx); err != nil {
		http.Error(w, "router: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if err := s.store.Healthy(); err != nil {
		http.Error(w, "storage: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	s.mu.RLock()
	checks := s.checks
	s.mu.RUnlock()
	for _, c := range checks {
		if err := c.check(); err != nil {
			http.Error(w, c.name+": "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// login exchanges an agent's extension and password for a session token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Agent    string `json:"agent"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body must be JSON {agent, password}")
		return
	}
	cfg := s.config()
	if !CheckAgentPassword(cfg, req.Agent, req.Password) {
		s.log.Warn("api login failure", "agent", req.Agent, "src", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "wrong agent or password")
		return
	}
	tok := s.tokens.issue(Principal{Name: "agent-" + req.Agent, Role: config.RoleAgent, Agent: req.Agent}, s.now())
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "role": config.RoleAgent, "agent": req.Agent,
		"expires_in": int(s.tokens.ttl.Seconds())})
}

// interactionJSON is the API's view of a record (CONTRACT.md).
type interactionJSON struct {
	ID          interaction.ID `json:"id"`
	Channel     string         `json:"channel"`
	Queue       string         `json:"queue"`
	State       string         `json:"state"`
	Agent       string         `json:"agent"`
	OfferedAt   *time.Time     `json:"offered_at"`
	AnsweredAt  *time.Time     `json:"answered_at"`
	EndedAt     *time.Time     `json:"ended_at"`
	Disposition string         `json:"disposition"`
	Reason      string         `json:"reason"`
	ScopeReason string         `json:"scope_reason,omitempty"`
	Recording   string         `json:"recording"`
	Score       int            `json:"score,omitempty"`
	Comment     string         `json:"comment,omitempty"`
	Topic       string         `json:"topic,omitempty"`
	TaxpayerID  string         `json:"taxpayer_id,omitempty"`
	Phone       string         `json:"taxpayer_phone,omitempty"`
	Parent      interaction.ID `json:"parent,omitempty"`
	AckBy       *time.Time     `json:"ack_by,omitempty"`
	AnswerBy    *time.Time     `json:"answer_by,omitempty"`
	Overdue     bool           `json:"overdue,omitempty"`
	Rings       int            `json:"rings,omitempty"`
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toJSON(r interaction.Record) interactionJSON {
	j := interactionJSON{
		ID: r.ID, Channel: r.Channel.String(), Queue: r.Queue, State: r.State.String(), Agent: r.Agent,
		OfferedAt: tp(r.OfferedAt), AnsweredAt: tp(r.AnsweredAt), EndedAt: tp(r.EndedAt),
		Disposition: r.Disposition.String(), Reason: r.Reason.String(), ScopeReason: r.ScopeReason,
		Score: r.Score, Comment: r.Comment, Topic: r.Topic, TaxpayerID: r.TaxpayerID, Phone: r.TaxpayerPhone,
		Parent: r.Parent, AckBy: tp(r.AckBy), AnswerBy: tp(r.AnswerBy), Overdue: r.Overdue, Rings: r.Rings,
	}
	if r.Recording != "" {
		j.Recording = "/api/v1/recordings/" + string(r.ID)
	}
	return j
}

func (s *Server) listInteractions(w http.ResponseWriter, r *http.Request, p Principal) {
	q := r.URL.Query()
	f := storage.Filter{Limit: 100}
	if v := q.Get("channel"); v != "" {
		ch, err := interaction.ParseChannel(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "channel must be phone, chat, message or visit")
			return
		}
		f.Channel = ch
	}
	for _, tf := range []struct {
		key string
		dst *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(tf.key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, tf.key+" must be an RFC 3339 time")
				return
			}
			*tf.dst = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		writeError(w, http.StatusBadRequest, "to is before from")
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be 1–10000")
			return
		}
		f.Limit = n
	}
	f.Agent = q.Get("agent")
	f.Taxpayer = q.Get("taxpayer")
	if p.Role == config.RoleAgent {
		// Agents see only what they handled (D1).
		if f.Agent != "" && f.Agent != p.Agent {
			writeError(w, http.StatusForbidden, "agents may list only their own interactions")
			return
		}
		f.Agent = p.Agent
	}
	recs, err := s.store.List(f)
	if err != nil {
		s.log.Error("api list", "err", err)
		writeError(w, http.StatusInternalServerError, "storage error")
		return
	}
	out := make([]interactionJSON, 0, len(recs))
	for _, rec := range recs {
		out = append(out, toJSON(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

// visible loads a record and checks the principal may see it.
func (s *Server) visible(w http.ResponseWriter, r *http.Request, p Principal) (interaction.Record, bool) {
	id := interaction.ID(r.PathValue("id"))
	if !id.Valid() {
		writeError(w, http.StatusBadRequest, "malformed interaction id")
		return interaction.Record{}, false
	}
	rec, err := s.store.Interaction(id)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such interaction")
		return rec, false
	}
	if err != nil {
		s.log.Error("api get", "id", id, "err", err)
		writeError(w, http.StatusInternalServerError, "storage error")
		return rec, false
	}
	if p.Role == config.RoleAgent && rec.Agent != p.Agent {
		// The same answer as for a missing id: an agent learns nothing
		// about interactions that are not theirs.
		writeError(w, http.StatusNotFound, "no such interaction")
		return rec, false
	}
	return rec, true
}

type eventJSON struct {
	Type  string            `json:"type"`
	At    time.Time         `json:"at"`
	Actor string            `json:"actor"`
	Agent string            `json:"agent,omitempty"`
	Data  map[string]string `json:"data,omitempty"`
}

func (s *Server) getInteraction(w http.ResponseWriter, r *http.Request, p Principal) {
	rec, ok := s.visible(w, r, p)
	if !ok {
		return
	}
	evs, err := s.store.Events(rec.ID)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "storage error")
		return
	}
	out := struct {
		interactionJSON
		Events     []eventJSON `json:"events"`
		Transcript []chat.Line `json:"transcript,omitempty"`
	}{interactionJSON: toJSON(rec), Events: []eventJSON{}}
	for _, e := range evs {
		if e.Type == interaction.Audit {
			continue
		}
		out.Events = append(out.Events, eventJSON{Type: e.Type.String(), At: e.At, Actor: e.Actor, Agent: e.Agent, Data: e.Data})
	}
	out.Transcript = chat.Transcript(evs)
	if rec.Channel == interaction.Chat || rec.Recording != "" {
		if !s.audit(w, r, p, rec.ID, "transcript") {
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// audit writes an Audit event and waits until it is durable, so that no
// read of taxpayer data goes unrecorded (D1). It answers 503 itself when
// the audit log cannot be written.
func (s *Server) audit(w http.ResponseWriter, r *http.Request, p Principal, id interaction.ID, what string) bool {
	ev := interaction.Event{Type: interaction.Audit, At: s.now(), ID: id, Actor: p.Actor(),
		Data: map[string]string{"what": what, "role": string(p.Role), "src": r.RemoteAddr}}
	if err := s.store.Append(r.Context(), ev); err != nil {
		s.log.Error("api audit write failed; refusing the read", "id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "audit log unavailable")
		return false
	}
	s.log.Info("audit", "actor", ev.Actor, "what", what, "id", id)
	return true
}

func (s *Server) getRecording(w http.ResponseWriter, r *http.Request, p Principal) {
	rec, ok := s.visible(w, r, p)
	if !ok {
		return
	}
	if rec.Recording == "" {
		writeError(w, http.StatusNotFound, "no recording for this interaction")
		return
	}
	f, err := s.store.Blobs().Open(rec.Recording)
	if err != nil {
		s.log.Error("api recording open", "id", rec.ID, "err", err)
		writeError(w, http.StatusNotFound, "recording file missing")
		return
	}
	defer f.Close()
	if !s.audit(w, r, p, rec.ID, "recording") {
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	http.ServeContent(w, r, string(rec.ID)+".wav", rec.EndedAt, f)
}

func (s *Server) queues(w http.ResponseWriter, r *http.Request, p Principal) {
	snap, err := s.router.Snapshot(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "router unavailable")
		return
	}
	if p.Role == config.RoleAgent {
		snap.Agents = slices.DeleteFunc(snap.Agents, func(a queue.AgentView) bool { return a.ID != p.Agent })
	}
	writeJSON(w, http.StatusOK, snap)
}

func (s *Server) transfer(w http.ResponseWriter, r *http.Request, p Principal) {
	var req struct {
		Target string `json:"target"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil || req.Target == "" {
		writeError(w, http.StatusBadRequest, "body must be JSON {target, reason}")
		return
	}
	id := interaction.ID(r.PathValue("id"))
	if !id.Valid() {
		writeError(w, http.StatusBadRequest, "malformed interaction id")
		return
	}
	if p.Role == config.RoleAgent {
		if rec, err := s.store.Interaction(id); err != nil || rec.Agent != p.Agent {
			writeError(w, http.StatusForbidden, "agents may transfer only their own interactions")
			return
		}
	} else if !p.can(config.RoleSupervisor, config.RoleAdmin) {
		writeError(w, http.StatusForbidden, "role "+string(p.Role)+" may not transfer")
		return
	}
	s.routerResult(w, s.router.Transfer(r.Context(), id, req.Target, req.Reason, p.Actor()))
}

// answerTicket asks the router to close a ticket the caller has been
// checked to own (or to supervise).
func (s *Server) answerTicket(w http.ResponseWriter, r *http.Request, p Principal, ta queue.TicketAnswer) {
	id := interaction.ID(r.PathValue("id"))
	if !id.Valid() {
		writeError(w, http.StatusBadRequest, "malformed ticket id")
		return
	}
	ta.Agent, ta.By = p.Agent, p.Actor()
	s.routerResult(w, s.router.AnswerTicket(r.Context(), id, ta))
}

func (s *Server) routerResult(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case errors.Is(err, queue.ErrUnknownInteraction):
		writeError(w, http.StatusNotFound, "no such live interaction or open ticket")
	case errors.Is(err, queue.ErrWrongState), errors.Is(err, queue.ErrRingWithdrawn):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, queue.ErrStopped), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "router unavailable")
	default:
		writeError(w, http.StatusBadRequest, err.Error())
	}
}

// CheckAgentPassword compares an agent's password in constant time. An
// unknown agent costs the same as a wrong password.
func CheckAgentPassword(cfg *config.Config, agent, password string) bool {
	want := "\x00no-such-agent\x00"
	known := false
	for _, a := range cfg.Agents {
		if a.ID == agent && a.Password != "" {
			want, known = a.Password, true
		}
	}
	h1 := sha256Sum(want)
	h2 := sha256Sum(password)
	return subtleEq(h1[:], h2[:]) && known
}

// String renders a principal for logs, without secrets.
func (p Principal) String() string { return fmt.Sprintf("%s(%s)", p.Name, p.Role) }

// ensure prometheus is linked for Metrics.
var _ prometheus.Collector = (*Metrics)(nil)
