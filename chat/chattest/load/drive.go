package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// peer is one client connection with one writer at a time.
type peer struct {
	ws *websocket.Conn
	mu sync.Mutex // serialises writes
}

func (p *peer) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return p.ws.WriteMessage(websocket.TextMessage, b)
}

// frame is the part of a server frame the driver reads.
type frame struct {
	Type     string `json:"type"`
	Chat     string `json:"chat"`
	ClientID string `json:"client_id"`
	From     string `json:"from"`
	State    string `json:"state"`
	Token    string `json:"token"`
}

type out struct {
	V        int    `json:"v"`
	Type     string `json:"type"`
	Chat     string `json:"chat,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Text     string `json:"text,omitempty"`
	Topic    string `json:"topic,omitempty"`
	Agent    string `json:"agent,omitempty"`
	Password string `json:"password,omitempty"`
}

// pair is one chat with both ends known.
type pair struct {
	id    string
	tp    *peer
	agent *peer
}

type driver struct {
	o       options
	addr    string
	dialer  websocket.Dialer
	mu      sync.Mutex // guards pairs and ready
	pairs   map[string]*pair
	ready   []*pair
	opened  atomic.Int64
	t2a     latencies
	a2t     latencies
	sentT2A atomic.Int64
	sentA2T atomic.Int64
	errs    atomic.Int64
	closes  atomic.Int64
	wg      sync.WaitGroup // reader goroutines
}

type latencies struct {
	mu sync.Mutex // guards d
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) snapshot() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s
}

func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// register records one side of a chat; the second side makes it ready.
func (d *driver) register(id string, tp, agent *peer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pairs[id]
	if p == nil {
		p = &pair{id: id}
		d.pairs[id] = p
	}
	if tp != nil {
		p.tp = tp
	}
	if agent != nil {
		p.agent = agent
	}
	if p.tp != nil && p.agent != nil {
		d.ready = append(d.ready, p)
	}
}

func (d *driver) dial(path string) (*peer, error) {
	ws, resp, err := d.dialer.Dial("ws://"+d.addr+path, nil)
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	return &peer{ws: ws}, nil
}

// stamp is a client id carrying the send time.
func stamp(n int64) string {
	return "L" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(n, 36)
}

func sentAt(clientID string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(clientID, "L")
	if !ok {
		return time.Time{}, false
	}
	ns, _, _ := strings.Cut(rest, "-")
	v, err := strconv.ParseInt(ns, 36, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, v), true
}

// readAgent handles one desk's frames until its connection ends.
func (d *driver) readAgent(p *peer, loggedIn chan<- error) {
	defer d.wg.Done()
	first := true
	for {
		_, b, err := p.ws.ReadMessage()
		if err != nil {
			if first {
				loggedIn <- err
			}
			d.closes.Add(1)
			return
		}
		var f frame
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch f.Type {
		case "logged_in":
			if first {
				first = false
				loggedIn <- nil
			}
		case "error":
			d.errs.Add(1)
			if first {
				first = false
				loggedIn <- errors.New("login refused: " + string(b))
			}
		case "chat":
			d.register(f.Chat, nil, p)
		case "msg":
			if f.From == "taxpayer" {
				if at, ok := sentAt(f.ClientID); ok {
					d.t2a.add(time.Since(at))
				}
			}
		}
	}
}

// readTaxpayer handles one taxpayer's frames until its connection ends.
func (d *driver) readTaxpayer(p *peer) {
	defer d.wg.Done()
	for {
		_, b, err := p.ws.ReadMessage()
		if err != nil {
			d.closes.Add(1)
			return
		}
		var f frame
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch f.Type {
		case "hello":
			if err := p.send(out{V: 1, Type: "open", Topic: "general"}); err != nil {
				d.errs.Add(1)
			}
		case "opened":
			d.opened.Add(1)
			d.register(f.Chat, p, nil)
		case "error":
			d.errs.Add(1)
		case "msg":
			if f.From == "agent" {
				if at, ok := sentAt(f.ClientID); ok {
					d.a2t.add(time.Since(at))
				}
			}
		}
	}
}

func (d *driver) stats(gc bool) (serverStats, error) {
	url := "http://" + d.addr + "/stats"
	if gc {
		url += "?gc=1"
	}
	resp, err := http.Get(url)
	if err != nil {
		return serverStats{}, err
	}
	defer resp.Body.Close()
	var s serverStats
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// report is what the run measured.
type report struct {
	Sessions, Agents, MaxChats int
	Connected                  int
	Queued                     int
	TargetRate                 float64
	Duration                   string
	SentPerSecond              float64
	DeliveredPerSecond         float64
	T2A, A2T                   summary
	Lost                       int64
	Errors, Closes             int64
	Base, AfterAgents, Loaded  serverStats
	End                        serverStats
	RSSPerSession              float64
	HeapPerSession             float64
	RampUp                     string
}

type summary struct {
	N   int
	P50 string
	P99 string
	Max string
	p50 time.Duration
	p99 time.Duration
}

func summarise(s []time.Duration) summary {
	if len(s) == 0 {
		return summary{}
	}
	return summary{N: len(s), P50: pct(s, .5).String(), P99: pct(s, .99).String(), Max: s[len(s)-1].String(),
		p50: pct(s, .5), p99: pct(s, .99)}
}

// drive runs the benchmark and prints the report.
func drive(o options) error {
	rep, err := run(o)
	if err != nil {
		return err
	}
	print(rep)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if rep.Lost != 0 || rep.Errors != 0 {
		return fmt.Errorf("%d messages lost, %d errors", rep.Lost, rep.Errors)
	}
	return nil
}

// startChild runs the server as a child process of this program and
// returns its address and a stop function.
func startChild(o options) (string, func(), error) {
	args := []string{"-serve", "-agents", strconv.Itoa(o.agents), "-max-chats", strconv.Itoa(o.maxChats)}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = stdin.Close() // the child stops when its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("server did not start: %w", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		stop()
		return "", nil, fmt.Errorf("server said %q", line)
	}
	return addr, stop, nil
}

// startInProcess runs the server in this process.
func startInProcess(o options) (string, func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, o, func(a string) { addrc <- a }) }()
	select {
	case a := <-addrc:
		stop := func() {
			cancel()
			if err := <-errc; err != nil {
				fmt.Fprintln(os.Stderr, "chat load: server:", err)
			}
		}
		return a, stop, nil
	case err := <-errc:
		cancel()
		return "", nil, err
	}
}

// run starts the server, opens the sessions, runs the messages and
// measures.
func run(o options) (report, error) {
	launch := startChild
	if o.inProcess {
		launch = startInProcess
	}
	addr, stop, err := launch(o)
	if err != nil {
		return report{}, err
	}
	defer stop()
	d := &driver{o: o, addr: addr, pairs: map[string]*pair{},
		dialer: websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}}
	rep := report{Sessions: o.sessions, Agents: o.agents, MaxChats: o.maxChats, TargetRate: o.rate,
		Duration: o.duration.String()}
	if rep.Base, err = d.stats(true); err != nil {
		return report{}, err
	}

	var peers []*peer
	defer func() {
		for _, p := range peers {
			_ = p.ws.Close()
		}
		d.wg.Wait()
	}()
	// Agents log in.
	for i := range o.agents {
		p, err := d.dial("/ws/agent")
		if err != nil {
			return report{}, fmt.Errorf("agent %d: %w", i, err)
		}
		peers = append(peers, p)
		loggedIn := make(chan error, 1)
		d.wg.Add(1)
		go d.readAgent(p, loggedIn)
		id := strconv.Itoa(20000 + i)
		if err := p.send(out{V: 1, Type: "login", Agent: id, Password: "load-" + id}); err != nil {
			return report{}, err
		}
		if err := <-loggedIn; err != nil {
			return report{}, fmt.Errorf("agent %s: %w", id, err)
		}
	}
	if rep.AfterAgents, err = d.stats(true); err != nil {
		return report{}, err
	}

	// Taxpayers open their chats, o.dialers at a time.
	t0 := time.Now()
	var pmu sync.Mutex
	sem := make(chan struct{}, o.dialers)
	var dialErr atomic.Value
	var dwg sync.WaitGroup
	for range o.sessions {
		sem <- struct{}{}
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			defer func() { <-sem }()
			p, err := d.dial("/ws/chat")
			if err != nil {
				dialErr.Store(err)
				return
			}
			pmu.Lock()
			peers = append(peers, p)
			pmu.Unlock()
			d.wg.Add(1)
			go d.readTaxpayer(p)
		}()
	}
	dwg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		return report{}, fmt.Errorf("dial taxpayer: %w", err)
	}
	want := min(o.sessions, o.agents*o.maxChats)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		n := len(d.ready)
		d.mu.Unlock()
		if int(d.opened.Load()) >= o.sessions && n >= want {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a bounded ramp-up, not a test wait
	}
	rep.RampUp = time.Since(t0).Round(time.Millisecond).String()
	d.mu.Lock()
	ready := slices.Clone(d.ready)
	d.mu.Unlock()
	rep.Connected = len(ready)
	rep.Queued = int(d.opened.Load()) - len(ready)
	if len(ready) == 0 {
		return report{}, errors.New("no chat was connected")
	}
	if rep.Loaded, err = d.stats(true); err != nil {
		return report{}, err
	}
	sessionsHeld := float64(rep.Loaded.Chat.Sessions)
	if sessionsHeld > 0 {
		rep.RSSPerSession = float64(rep.Loaded.RSS-rep.AfterAgents.RSS) / sessionsHeld
		rep.HeapPerSession = float64(rep.Loaded.HeapInuse-rep.AfterAgents.HeapInuse) / sessionsHeld
	}

	// Messages flow at the fixed rate, alternating directions.
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	var sent int64
	text := "负载测试：请问电子税务局登录提示证书错误怎么办？"
	rnd := rand.New(rand.NewPCG(1, 2))
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			due := int64(o.rate * now.Sub(start).Seconds())
			for ; sent < due; sent++ {
				p := ready[rnd.IntN(len(ready))]
				if sent%2 == 0 {
					d.sentT2A.Add(1)
					if p.tp.send(out{V: 1, Type: "send", ClientID: stamp(sent), Text: text}) != nil {
						d.errs.Add(1)
					}
				} else {
					d.sentA2T.Add(1)
					if p.agent.send(out{V: 1, Type: "send", Chat: p.id, ClientID: stamp(sent), Text: text}) != nil {
						d.errs.Add(1)
					}
				}
			}
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	// Let messages in flight arrive (bounded).
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if int64(len(d.t2a.snapshot())) >= d.sentT2A.Load() && int64(len(d.a2t.snapshot())) >= d.sentA2T.Load() {
			break
		}
	}
	t2a, a2t := d.t2a.snapshot(), d.a2t.snapshot()
	rep.T2A, rep.A2T = summarise(t2a), summarise(a2t)
	rep.SentPerSecond = float64(sent) / elapsed.Seconds()
	rep.DeliveredPerSecond = float64(len(t2a)+len(a2t)) / elapsed.Seconds()
	rep.Lost = d.sentT2A.Load() + d.sentA2T.Load() - int64(len(t2a)+len(a2t))
	rep.Errors, rep.Closes = d.errs.Load(), d.closes.Load()
	if rep.End, err = d.stats(true); err != nil {
		return report{}, err
	}
	return rep, nil
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func print(r report) {
	fmt.Printf("chat load: %d taxpayer sessions (%d connected, %d queued), %d agents × %d chats, ramp-up %s\n",
		r.Sessions, r.Connected, r.Queued, r.Agents, r.MaxChats, r.RampUp)
	fmt.Printf("messages: target %.0f/s for %s; sent %.0f/s, delivered %.0f/s; lost %d; errors %d\n",
		r.TargetRate, r.Duration, r.SentPerSecond, r.DeliveredPerSecond, r.Lost, r.Errors)
	fmt.Printf("latency taxpayer→agent: p50 %s  p99 %s  max %s  (n=%d)\n", r.T2A.P50, r.T2A.P99, r.T2A.Max, r.T2A.N)
	fmt.Printf("latency agent→taxpayer: p50 %s  p99 %s  max %s  (n=%d)\n", r.A2T.P50, r.A2T.P99, r.A2T.Max, r.A2T.N)
	fmt.Printf("server memory: RSS %s idle, %s with agents, %s with sessions, %s at the end; heap in use %s loaded, %s at the end\n",
		mib(r.Base.RSS), mib(r.AfterAgents.RSS), mib(r.Loaded.RSS), mib(r.End.RSS), mib(r.Loaded.HeapInuse), mib(r.End.HeapInuse))
	fmt.Printf("per session: RSS %.1f KiB, heap %.1f KiB; goroutines %d; connections %d; events %d\n",
		r.RSSPerSession/1024, r.HeapPerSession/1024, r.Loaded.Goroutines, r.Loaded.Chat.Connections, r.End.Events)
	cpu := time.Duration(r.End.CPUUserMs+r.End.CPUSystemMs-r.Loaded.CPUUserMs-r.Loaded.CPUSystemMs) * time.Millisecond
	fmt.Printf("server CPU during the message phase: %s\n", cpu)
}
