package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
)

// Metrics is taxline's Prometheus surface: counters fed from the event
// stream (so they agree with the stored events) and gauges read from the
// router at scrape time. Metric names start with taxline_.
type Metrics struct {
	Registry *prometheus.Registry

	events   *prometheus.CounterVec
	offered  *prometheus.CounterVec
	answered *prometheus.CounterVec
	ended    *prometheus.CounterVec
	wait     *prometheus.HistogramVec
	missed   *prometheus.CounterVec

	snap    func(ctx context.Context) (queue.Snapshot, error)
	waiting *prometheus.Desc
	longest *prometheus.Desc
	agents  *prometheus.Desc
	live    *prometheus.Desc

	offeredAt map[interaction.ID]offerInfo // guarded by being fed from the one router goroutine
}

type offerInfo struct {
	at      time.Time
	channel interaction.Channel
	queue   string
}

// NewMetrics registers taxline's metrics (and the Go runtime's).
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taxline_events_total",
			Help: "Events recorded, by type."}, []string{"type"}),
		offered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taxline_interactions_offered_total",
			Help: "Interactions that entered a queue."}, []string{"channel", "queue"}),
		answered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taxline_interactions_answered_total",
			Help: "Interactions answered by an agent."}, []string{"channel", "queue"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taxline_interactions_ended_total",
			Help: "Interactions ended, by reason (abandoned, timeout, overflow, voicemail, callback kept apart)."},
			[]string{"channel", "reason"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "taxline_answer_wait_seconds",
			Help:    "Time from queue entry to answer.",
			Buckets: []float64{5, 10, 20, 30, 45, 60, 90, 120, 300, 600}}, []string{"channel"}),
		missed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "taxline_rule_missed_total",
			Help: "Timing rules that fired: first_response (C2), answer_target (P3), agent_silence (C4), ticket_overdue (M3)."},
			[]string{"rule"}),
		waiting: prometheus.NewDesc("taxline_queue_waiting", "Interactions waiting in a queue.", []string{"queue"}, nil),
		longest: prometheus.NewDesc("taxline_queue_longest_wait_seconds", "Wait of the oldest waiting interaction.", []string{"queue"}, nil),
		agents:  prometheus.NewDesc("taxline_agents", "Agents by state.", []string{"state"}, nil),
		live:    prometheus.NewDesc("taxline_live_interactions", "Interactions queued, ringing or connected.", []string{"channel"}, nil),

		offeredAt: map[interaction.ID]offerInfo{},
	}
	m.Registry.MustRegister(m.events, m.offered, m.answered, m.ended, m.wait, m.missed, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Watch sets the router whose live state the gauges report.
func (m *Metrics) Watch(snap func(ctx context.Context) (queue.Snapshot, error)) { m.snap = snap }

// Observe counts one event. It is called from the router's goroutine
// through Tee, in event order.
func (m *Metrics) Observe(e interaction.Event) {
	m.events.WithLabelValues(e.Type.String()).Inc()
	switch e.Type {
	case interaction.Offered:
		m.offered.WithLabelValues(e.Channel.String(), e.Queue).Inc()
		m.offeredAt[e.ID] = offerInfo{at: e.At, channel: e.Channel, queue: e.Queue}
	case interaction.Answered:
		if o, ok := m.offeredAt[e.ID]; ok {
			m.answered.WithLabelValues(o.channel.String(), o.queue).Inc()
			m.wait.WithLabelValues(o.channel.String()).Observe(e.At.Sub(o.at).Seconds())
		}
	case interaction.Ended:
		if o, ok := m.offeredAt[e.ID]; ok {
			m.ended.WithLabelValues(o.channel.String(), e.Reason.String()).Inc()
			delete(m.offeredAt, e.ID)
		}
	case interaction.FirstResponseMissed:
		m.missed.WithLabelValues("first_response").Inc()
	case interaction.AnswerTargetMissed:
		m.missed.WithLabelValues("answer_target").Inc()
	case interaction.AgentSilence:
		m.missed.WithLabelValues("agent_silence").Inc()
	case interaction.TicketOverdue:
		m.missed.WithLabelValues("ticket_overdue").Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.waiting
	ch <- m.longest
	ch <- m.agents
	ch <- m.live
}

// Collect implements prometheus.Collector with the router's live state.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if m.snap == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := m.snap(ctx)
	if err != nil {
		return
	}
	for _, q := range s.Queues {
		ch <- prometheus.MustNewConstMetric(m.waiting, prometheus.GaugeValue, float64(q.Waiting), q.Name)
		ch <- prometheus.MustNewConstMetric(m.longest, prometheus.GaugeValue, q.LongestWait.Seconds(), q.Name)
	}
	byState := map[string]int{}
	for _, a := range s.Agents {
		byState[a.State.String()]++
	}
	for st, n := range byState {
		ch <- prometheus.MustNewConstMetric(m.agents, prometheus.GaugeValue, float64(n), st)
	}
	for c, n := range s.Live {
		ch <- prometheus.MustNewConstMetric(m.live, prometheus.GaugeValue, float64(n), c.String())
	}
}

// Tee sends every event to each sink in turn.
type Tee []queue.EventSink

// Emit implements queue.EventSink.
func (t Tee) Emit(e interaction.Event) {
	for _, s := range t {
		s.Emit(e)
	}
}

// Sink adapts Metrics to queue.EventSink.
func (m *Metrics) Sink() queue.EventSink { return sinkFunc(m.Observe) }

type sinkFunc func(interaction.Event)

func (f sinkFunc) Emit(e interaction.Event) { f(e) }
