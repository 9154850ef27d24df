package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
)

// Router is what the gateway needs from the ACD; *queue.Router satisfies
// it. It is declared here so that protocol tests can also drive the
// gateway with a scripted router.
type Router interface {
	Offer(ctx context.Context, o queue.Offer) (queue.Admission, error)
	Abandon(ctx context.Context, id interaction.ID) error
	Answer(ctx context.Context, id interaction.ID, agent string) error
	RingFailed(ctx context.Context, id interaction.ID, agent string, cause queue.RingCause) error
	Activity(ctx context.Context, id interaction.ID, from queue.Party) error
	Choose(ctx context.Context, id interaction.ID, later bool) (queue.TicketInfo, error)
	End(ctx context.Context, id interaction.ID, e queue.End) error
	Transfer(ctx context.Context, id interaction.ID, target, reason, actor string) error
	SetAgentStatus(ctx context.Context, agent string, s queue.AgentStatus, reason string) error
	SetPresence(ctx context.Context, agent string, m queue.Media, present bool) error
	CreateTicket(ctx context.Context, t queue.Ticket) (queue.TicketInfo, error)
	Snapshot(ctx context.Context) (queue.Snapshot, error)
}

var _ Router = (*queue.Router)(nil)

// Store receives the chat's own events: transcript lines
// (interaction.ChatMessage) and ratings (interaction.SurveyScore). Emit must
// not block; *storage.DB satisfies it.
type Store interface {
	Emit(interaction.Event)
}

// routerWait bounds one call into the router, so a stopped router cannot
// wedge a session.
const routerWait = 10 * time.Second

// DefaultDeskRefresh is how often each desk is sent its queues' waiting
// count and longest wait.
const DefaultDeskRefresh = 2 * time.Second

// Server is the chat gateway. Mount TaxpayerHandler at /ws/chat and
// AgentHandler at /ws/agent.
type Server struct {
	router Router
	store  Store
	log    *slog.Logger
	cfg    atomic.Pointer[config.Config]

	// DeskRefresh is how often desks get queue figures; set it before the
	// first agent connects. Zero means DefaultDeskRefresh.
	DeskRefresh time.Duration

	counters counters
	upgrader websocket.Upgrader
	// activities carries Router.Activity calls to one goroutine, in order,
	// so that delivering a message never waits for the router.
	activities mailbox
	ctx        context.Context // ends at Shutdown: stops sessions and the desk pusher
	cancel     context.CancelFunc
	wg         sync.WaitGroup // sessions, connections, the desk pusher
	pusher     sync.Once

	mu         sync.Mutex // guards the maps below and closing
	closing    bool
	sessions   map[string]*session         // by token
	chats      map[interaction.ID]*session // by interaction id
	desks      map[string]*desk            // logged-in desks by agent id
	deskTokens map[string]deskToken        // desk session token → agent
	agentChats map[string]map[*session]struct{}
	conns      map[*conn]struct{}
}

var _ queue.Observer = (*Server)(nil)

// NewServer returns a chat gateway that offers chats to router and writes
// transcript events to store.
func NewServer(cfg *config.Config, router Router, store Store, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		router: router, store: store, log: log.With("component", "chat"),
		ctx: ctx, cancel: cancel,
		sessions: map[string]*session{}, chats: map[interaction.ID]*session{},
		desks: map[string]*desk{}, deskTokens: map[string]deskToken{},
		agentChats: map[string]map[*session]struct{}{}, conns: map[*conn]struct{}{},
	}
	s.cfg.Store(cfg)
	s.activities = newMailbox()
	s.wg.Add(1)
	go s.reportActivity()
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		// The origin is checked after the upgrade so that a refused page
		// learns why from a 1008 close instead of a bare 403.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return s
}

// Reload makes cfg the configuration for new sessions and connections.
// Live ones keep the limits they started with; texts and topics change at
// once.
func (s *Server) Reload(cfg *config.Config) { s.cfg.Store(cfg) }

func (s *Server) config() *config.Config { return s.cfg.Load() }

// Shutdown closes every connection with 1001 (going away), stops every
// session and waits for their goroutines, or until ctx ends. The router
// drains the interactions themselves.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(websocket.CloseGoingAway, "server shutting down", true)
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TaxpayerHandler serves the taxpayer socket (/ws/chat).
func (s *Server) TaxpayerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.accept(w, r)
		if c == nil {
			return
		}
		t := &taxpayerConn{srv: s, c: c}
		c.send(s.taxpayerHello())
		c.readLoop(t.handle)
		t.detach()
		s.finish(c)
	})
}

// AgentHandler serves the agent desk socket (/ws/agent).
func (s *Server) AgentHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.accept(w, r)
		if c == nil {
			return
		}
		s.pusher.Do(func() {
			s.wg.Add(1)
			go s.pushQueues()
		})
		d := &desk{srv: s, c: c}
		c.send(s.agentHello())
		c.readLoop(d.handle)
		d.gone()
		s.finish(c)
	})
}

// accept upgrades the request, starts the connection's writer and checks
// the origin. It returns nil when the connection is already over.
func (s *Server) accept(w http.ResponseWriter, r *http.Request) *conn {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // the upgrader has answered with an HTTP error
	}
	cfg := s.config()
	c := newConn(ws, cfg.Chat.Limits, s.log, &s.counters)
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.conns[c] = struct{}{}
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closing {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		_ = ws.Close()
		return nil
	}
	go c.writeLoop()
	if !originAllowed(r, cfg.Chat.Limits.AllowedOrigins) {
		s.log.Warn("websocket origin refused", "origin", r.Header.Get("Origin"), "path", r.URL.Path)
		c.close(websocket.ClosePolicyViolation, "origin not allowed", true)
		s.finish(c)
		return nil
	}
	return c
}

// finish waits for the connection's writer and forgets the connection.
func (s *Server) finish(c *conn) {
	c.close(0, "", false)
	<-c.closed
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// originAllowed applies chat.limits.allowed_origins: an exact match of the
// Origin header, "*" for any; with an empty list only the page's own host.
// A request without Origin is not from a browser page and is allowed.
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(allowed) == 0 {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

func (s *Server) taxpayerHello() Frame {
	cfg := s.config()
	f := Frame{Type: TypeHello, Limits: &LimitsInfo{
		MaxTextChars:  cfg.Chat.Limits.MaxTextChars,
		MaxImageBytes: cfg.Chat.Limits.MaxImageBytes,
		ImageTypes:    cfg.Chat.Limits.ImageTypes,
	}}
	for _, t := range cfg.Chat.Topics {
		label := t.Label
		if label == "" {
			label = t.Name
		}
		f.Topics = append(f.Topics, TopicInfo{Name: t.Name, Label: label})
	}
	return f
}

// CannedResponses are the texts of the default canned replies
// (config.DefaultCanned); the desk gets the configured ones
// (chat.canned).
var CannedResponses = cannedTexts(config.DefaultCanned())

func cannedTexts(c []config.CannedResponse) []string {
	out := make([]string, 0, len(c))
	for _, r := range c {
		out = append(out, r.Text)
	}
	return out
}

func cannedReplyTexts(c []CannedInfo) []string {
	out := make([]string, 0, len(c))
	for _, r := range c {
		out = append(out, r.Text)
	}
	return out
}

// cannedReplies is chat.canned for the logged_in frame (the defaults when
// the config was built without SetDefaults).
func cannedReplies(cfg *config.Config) []CannedInfo {
	c := cfg.Chat.Canned
	if len(c) == 0 {
		c = config.DefaultCanned()
	}
	out := make([]CannedInfo, 0, len(c))
	for _, r := range c {
		out = append(out, CannedInfo{Title: r.Title, Text: r.Text})
	}
	return out
}

func (s *Server) agentHello() Frame {
	cfg := s.config()
	// canned stays in hello for v1 desks; logged_in carries the titled
	// canned_replies. limits tell the desk which screenshots it may send.
	f := Frame{Type: TypeHello, Scope: cfg.ScopeReasons, Canned: cannedReplyTexts(cannedReplies(cfg)),
		Limits: &LimitsInfo{MaxTextChars: cfg.Chat.Limits.MaxTextChars,
			MaxImageBytes: cfg.Chat.Limits.MaxImageBytes, ImageTypes: cfg.Chat.Limits.ImageTypes}}
	for _, q := range cfg.Queues {
		if slices.Contains(q.Channels, "chat") {
			f.Queues = append(f.Queues, QueueInfo{Name: q.Name})
		}
	}
	return f
}

// deskTokenLifetime bounds how long a desk token can log in again (a
// working day and then some); after it the agent types the password.
// Config chat.desk_session overrides it.
const deskTokenLifetime = 14 * time.Hour

// deskSession is the configured desk token lifetime.
func deskSession(cfg *config.Config) time.Duration {
	if cfg.Chat.DeskSession > 0 {
		return cfg.Chat.DeskSession
	}
	return deskTokenLifetime
}

type deskToken struct {
	agent   string
	expires time.Time
}

// newToken returns 128 random bits in hex.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	return hex.EncodeToString(b[:])
}

// routerCtx is the context for one router call.
func (s *Server) routerCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, routerWait)
}

// session lookups and registrations.

func (s *Server) sessionByToken(tok string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[tok]
}

func (s *Server) chat(id interaction.ID) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chats[id]
}

// startSession registers a new session and starts its goroutine. It
// returns nil when the server is shutting down.
func (s *Server) startSession(topic config.Topic) *session {
	sess := newSession(s, topic)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.sessions[sess.token] = sess
	s.wg.Add(1)
	s.mu.Unlock()
	go sess.run(s.ctx)
	return sess
}

func (s *Server) registerChat(sess *session) {
	s.mu.Lock()
	s.chats[sess.id] = sess
	s.mu.Unlock()
}

// forget removes a finished session from every map.
func (s *Server) forget(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess.token)
	if s.chats[sess.id] == sess {
		delete(s.chats, sess.id)
	}
	for agent, set := range s.agentChats {
		if _, ok := set[sess]; ok {
			delete(set, sess)
			if len(set) == 0 {
				delete(s.agentChats, agent)
			}
		}
	}
	s.mu.Unlock()
}

// link records that agent is ringing for or handling sess; unlink undoes it.
func (s *Server) link(agent string, sess *session) {
	s.mu.Lock()
	set := s.agentChats[agent]
	if set == nil {
		set = map[*session]struct{}{}
		s.agentChats[agent] = set
	}
	set[sess] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) unlink(agent string, sess *session) {
	s.mu.Lock()
	if set := s.agentChats[agent]; set != nil {
		delete(set, sess)
		if len(set) == 0 {
			delete(s.agentChats, agent)
		}
	}
	s.mu.Unlock()
}

// linked returns the sessions agent is ringing for or handling.
func (s *Server) linked(agent string) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.agentChats[agent]))
	for sess := range s.agentChats[agent] {
		out = append(out, sess)
	}
	return out
}

// desk returns agent's logged-in desk, or nil.
func (s *Server) desk(agent string) *desk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.desks[agent]
}

// toDesk sends f to agent's desk if it is logged in, and reports whether
// it was.
func (s *Server) toDesk(agent string, f Frame) bool {
	d := s.desk(agent)
	if d == nil {
		return false
	}
	return d.c.send(f)
}

// AgentChanged implements queue.Observer: the agent's desk hears about its
// own state at once (a pause after missed offers, wrap-up, break). Wire it
// into queue.Options.Observer.
func (s *Server) AgentChanged(v queue.AgentView) {
	if d := s.desk(v.ID); d != nil {
		d.c.send(agentFrame(v))
	}
}

func agentFrame(v queue.AgentView) Frame {
	return Frame{Type: TypeAgentState, Agent: v.ID, State: v.State.String(), Status: v.Status.String(),
		Reason: v.Reason, Chats: v.Chats, MaxChats: v.MaxChats}
}

// pushQueues sends every desk its queues' figures every DeskRefresh until
// Shutdown.
func (s *Server) pushQueues() {
	defer s.wg.Done()
	every := s.DeskRefresh
	if every <= 0 {
		every = DefaultDeskRefresh
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.pushQueuesOnce()
		}
	}
}

func (s *Server) pushQueuesOnce() {
	s.mu.Lock()
	desks := make([]*desk, 0, len(s.desks))
	for _, d := range s.desks {
		desks = append(desks, d)
	}
	s.mu.Unlock()
	if len(desks) == 0 {
		return
	}
	ctx, cancel := s.routerCtx()
	snap, err := s.router.Snapshot(ctx)
	cancel()
	if err != nil {
		return
	}
	queues := map[string]QueueInfo{}
	for _, q := range snap.Queues {
		queues[q.Name] = QueueInfo{Name: q.Name, Waiting: q.Waiting, LongestWait: int(q.LongestWait.Seconds()),
			Available: q.AvailableText, ChatOpen: q.ChatOpen}
	}
	views := map[string]queue.AgentView{}
	for _, a := range snap.Agents {
		views[a.ID] = a
	}
	cfg := s.config()
	for _, d := range desks {
		f := Frame{Type: TypeQueues}
		for _, a := range cfg.Agents {
			if a.ID != d.agent {
				continue
			}
			for _, q := range a.Queues {
				if qi, ok := queues[q]; ok {
					f.Queues = append(f.Queues, qi)
				}
			}
		}
		d.c.send(f)
		if v, ok := views[d.agent]; ok {
			d.c.send(agentFrame(v))
		}
	}
}

// Stats are the gateway's live figures, for /metrics.
type Stats struct {
	// Connections is the number of open WebSocket connections, both kinds.
	Connections int
	// Sessions is the number of chat sessions held (live, or ended and
	// waiting for a rating or a resume).
	Sessions int
	// Desks is the number of logged-in agent desks.
	Desks int
	// SlowDropped counts connections closed because their send queue
	// filled (a slow client).
	SlowDropped uint64
	// PolicyClosed counts connections closed for a limit or a bad frame.
	PolicyClosed uint64
}

// Stats returns the gateway's live figures.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Connections: len(s.conns), Sessions: len(s.sessions), Desks: len(s.desks)}
	s.mu.Unlock()
	st.SlowDropped = s.counters.slow.Load()
	st.PolicyClosed = s.counters.policy.Load()
	return st
}

// reportActivity makes the queued Router.Activity calls until Shutdown.
func (s *Server) reportActivity() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.activities.signal:
			for _, f := range s.activities.take() {
				f()
			}
		}
	}
}

// emit writes one event to the store.
func (s *Server) emit(e interaction.Event) {
	if s.store != nil {
		s.store.Emit(e)
	}
}
