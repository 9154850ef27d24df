package queue

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
)

type nopHandler struct{}

func (nopHandler) Ring(Ring)                       {}
func (nopHandler) StopRing(interaction.ID, string) {}
func (nopHandler) Notify(Notice)                   {}
func (nopHandler) Close(Close)                     {}

// benchCore builds a core with agents all busy on calls and waiting calls
// in the queue, driven directly on a virtual clock.
func benchCore(b *testing.B, agents, waiting int) (*core, []interaction.ID, time.Time) {
	cfg := &config.Config{Queues: []config.Queue{{Name: "etax", Channels: []string{"phone", "chat"}}}}
	for i := range agents {
		cfg.Agents = append(cfg.Agents, config.Agent{ID: fmt.Sprintf("%04d", i), Queues: []string{"etax"},
			Skills: map[string]int{"etax": 1 + i%5}})
	}
	cfg.SetDefaults()
	c, err := newCore(cfg, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC) // Monday 10:00 in Shanghai
	var live []interaction.ID
	for _, id := range c.agentIDs {
		if err := c.presence(c.agents[id], MediaVoice, true, now); err != nil {
			b.Fatal(err)
		}
	}
	for range agents + waiting {
		now = now.Add(time.Millisecond)
		adm, err := c.offer(Offer{Channel: interaction.Phone, Queue: "etax", Handler: nopHandler{}}, now)
		if err != nil {
			b.Fatal(err)
		}
		if x := c.ixns[adm.ID]; x.state == ixnRinging {
			if err := c.answer(adm.ID, x.agent.id, now); err != nil {
				b.Fatal(err)
			}
			live = append(live, adm.ID)
		}
	}
	if got := c.queues["etax"].waiting; got != waiting {
		b.Fatalf("waiting = %d, want %d", got, waiting)
	}
	return c, live, now
}

// BenchmarkRoutingDecision measures one routing decision on a busy desk:
// an agent hangs up, the router picks the next waiting call for it (by
// priority and age, among the calls its skills fit) and rings it; the
// agent answers; a new call joins so the queue length stays constant.
func BenchmarkRoutingDecision(b *testing.B) {
	for _, waiting := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("agents=2000/waiting=%d", waiting), func(b *testing.B) {
			c, live, now := benchCore(b, 2000, waiting)
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				now = now.Add(time.Millisecond)
				id := live[i%len(live)]
				x := c.ixns[id]
				a := x.agent
				t0 := time.Now()
				if err := c.end(id, End{By: PartyTaxpayer}, now); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				nx := a.lastRung
				if err := c.answer(nx, a.id, now); err != nil {
					b.Fatal(err)
				}
				live[i%len(live)] = nx
				if _, err := c.offer(Offer{Channel: interaction.Phone, Queue: "etax", Handler: nopHandler{}}, now); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)*50/100].Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			}
		})
	}
}
