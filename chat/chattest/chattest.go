// Package chattest runs the chat gateway against the real router on
// loopback for tests and the load benchmark, and gives them a WebSocket
// client that speaks the chat protocol.
package chattest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/taxline/taxline/chat"
	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
)

// Store is an in-memory event store: it keeps every event, in order.
type Store struct {
	mu     sync.Mutex // guards events and notify
	events []interaction.Event
	notify chan struct{}
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{notify: make(chan struct{})} }

// Emit implements chat.Store and queue.EventSink.
func (s *Store) Emit(e interaction.Event) {
	s.mu.Lock()
	e.Seq = uint64(len(s.events) + 1)
	s.events = append(s.events, e)
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// Events returns the events of interaction id (all events when id is "").
func (s *Store) Events(id interaction.ID) []interaction.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []interaction.Event
	for _, e := range s.events {
		if id == "" || e.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// Count returns how many events of type t interaction id has.
func (s *Store) Count(id interaction.ID, t interaction.EventType) int {
	n := 0
	for _, e := range s.Events(id) {
		if e.Type == t {
			n++
		}
	}
	return n
}

// WaitFor waits until an event of id matches ok, or the deadline.
func (s *Store) WaitFor(id interaction.ID, d time.Duration, ok func(interaction.Event) bool) (interaction.Event, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.notify
		for _, e := range s.events {
			if (id == "" || e.ID == id) && ok(e) {
				s.mu.Unlock()
				return e, nil
			}
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return interaction.Event{}, fmt.Errorf("chattest: no matching event for %s within %v", id, d)
		}
	}
}

// Record folds the events of id.
func (s *Store) Record(id interaction.ID) interaction.Record {
	var r interaction.Record
	for _, e := range s.Events(id) {
		r.Apply(e)
	}
	return r
}

// Config returns the embedded demo config with the chat timers given
// (zero keeps the demo's), auto-accept off, and wide limits for tests.
func Config(first, agentSilence, reminder, closeAfter time.Duration) (*config.Config, error) {
	cfg, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		return nil, err
	}
	ch := &cfg.Chat
	for _, p := range []struct {
		dst *time.Duration
		v   time.Duration
	}{{&ch.FirstResponse, first}, {&ch.AgentSilence, agentSilence}, {&ch.CustomerSilenceReminder, reminder}, {&ch.CustomerSilenceClose, closeAfter}} {
		if p.v > 0 {
			*p.dst = p.v
		}
	}
	return cfg, nil
}

// Env is a running router + chat gateway on a loopback HTTP server.
type Env struct {
	Config *config.Config
	Router *queue.Router
	Server *chat.Server
	Store  *Store
	HTTP   *httptest.Server
	// TaxpayerURL and AgentURL are the ws:// addresses.
	TaxpayerURL, AgentURL string

	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs cfg's router and a chat gateway on 127.0.0.1:0. extra, if
// not nil, serves every other path (the pages). Close stops everything.
func Start(cfg *config.Config, log *slog.Logger, extra http.Handler) (*Env, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := NewStore()
	var srv *chat.Server
	obs := observer{get: func() *chat.Server { return srv }}
	r, err := queue.NewRouter(cfg, queue.Options{Events: st, Observer: &obs, Logger: log})
	if err != nil {
		return nil, err
	}
	srv = chat.NewServer(cfg, r, st, log)
	srv.DeskRefresh = 200 * time.Millisecond
	obs.ready.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	mux := http.NewServeMux()
	mux.Handle("/ws/chat", srv.TaxpayerHandler())
	mux.Handle("/ws/agent", srv.AgentHandler())
	if extra != nil {
		mux.Handle("/", extra)
	}
	hs := httptest.NewServer(mux)
	ws := "ws" + strings.TrimPrefix(hs.URL, "http")
	return &Env{Config: cfg, Router: r, Server: srv, Store: st, HTTP: hs,
		TaxpayerURL: ws + "/ws/chat", AgentURL: ws + "/ws/agent", cancel: cancel, done: done}, nil
}

// Close shuts the gateway, the HTTP server and the router down.
func (e *Env) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.Server.Shutdown(ctx)
	e.HTTP.CloseClientConnections()
	e.HTTP.Close()
	e.cancel()
	<-e.done
}

// observer forwards the router's agent changes to the gateway once it
// exists (the router is built first).
type observer struct {
	get   func() *chat.Server
	ready atomic.Bool
}

func (o *observer) AgentChanged(v queue.AgentView) {
	if o.ready.Load() {
		o.get().AgentChanged(v)
	}
}

// Client is one WebSocket peer speaking the chat protocol.
type Client struct {
	WS *websocket.Conn
	in chan chat.Frame
	// CloseErr is the close frame or error that ended the connection; set
	// before the channel from Frames is closed.
	CloseErr error
	done     chan struct{}
	wmu      sync.Mutex // one writer at a time

	pmu    sync.Mutex // guards paused
	paused bool
	cond   *sync.Cond
}

// Pause stops reading from the socket (after the frame being read), as a
// client too slow to keep up would.
func (c *Client) Pause() {
	c.pmu.Lock()
	c.paused = true
	c.pmu.Unlock()
}

// Resume reads again after Pause.
func (c *Client) Resume() {
	c.pmu.Lock()
	c.paused = false
	c.pmu.Unlock()
	c.cond.Broadcast()
}

// Dial connects to url with the given Origin header ("" for none).
func Dial(ctx context.Context, url, origin string) (*Client, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	ws, resp, err := d.DialContext(ctx, url, h)
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	c := &Client{WS: ws, in: make(chan chat.Frame, 1024), done: make(chan struct{})}
	c.cond = sync.NewCond(&c.pmu)
	go c.read()
	return c, nil
}

func (c *Client) read() {
	defer close(c.done)
	defer close(c.in)
	for {
		c.pmu.Lock()
		for c.paused {
			c.cond.Wait()
		}
		c.pmu.Unlock()
		_, b, err := c.WS.ReadMessage()
		if err != nil {
			c.CloseErr = err
			return
		}
		var f chat.Frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.CloseErr = err
			return
		}
		c.in <- f
	}
}

// Frames is the stream of frames received; it is closed when the
// connection ends.
func (c *Client) Frames() <-chan chat.Frame { return c.in }

// Send writes one frame, stamping the protocol version.
func (c *Client) Send(f chat.Frame) error {
	f.V = chat.Version
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.WS.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.WS.WriteJSON(f)
}

// SendRaw writes one raw message of type mt (websocket.TextMessage...).
func (c *Client) SendRaw(mt int, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.WS.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.WS.WriteMessage(mt, b)
}

// ErrClosed is returned by Expect when the connection ended first.
var ErrClosed = errors.New("chattest: connection closed")

// Expect returns the next frame of type typ that also matches ok (nil for
// any), skipping others, within d.
func (c *Client) Expect(d time.Duration, typ string, ok func(chat.Frame) bool) (chat.Frame, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case f, open := <-c.in:
			if !open {
				return chat.Frame{}, fmt.Errorf("%w waiting for %q: %v", ErrClosed, typ, c.CloseErr)
			}
			if f.Type == typ && (ok == nil || ok(f)) {
				return f, nil
			}
		case <-t.C:
			return chat.Frame{}, fmt.Errorf("chattest: no %q frame within %v", typ, d)
		}
	}
}

// Collect returns every frame received within d (or until the close).
func (c *Client) Collect(d time.Duration) []chat.Frame {
	t := time.NewTimer(d)
	defer t.Stop()
	var out []chat.Frame
	for {
		select {
		case f, open := <-c.in:
			if !open {
				return out
			}
			out = append(out, f)
		case <-t.C:
			return out
		}
	}
}

// WaitClosed waits for the connection to end and returns its close error.
func (c *Client) WaitClosed(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case _, open := <-c.in:
			if !open {
				return c.CloseErr
			}
		case <-t.C:
			return fmt.Errorf("chattest: still open after %v", d)
		}
	}
}

// Close closes the connection abruptly (no close frame): a dropped network.
func (c *Client) Close() {
	_ = c.WS.Close()
	c.Resume()
	<-c.done
}

// Leave closes the connection politely with 1000.
func (c *Client) Leave() {
	c.wmu.Lock()
	_ = c.WS.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.WS.Close()
	c.Resume()
	<-c.done
}

// Must fails the test on err.
func Must[T any](t testing.TB, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
