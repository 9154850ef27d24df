package queue

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/interaction"
)

// bruteForcePosition is the definition position must agree with.
func bruteForcePosition(q *queueState, x *ixn) int {
	n := 1
	for _, b := range q.order {
		for _, y := range b.items {
			if y == x || y.channel != x.channel {
				continue
			}
			if y.priority > x.priority || y.priority == x.priority && ahead(y, x) {
				n++
			}
		}
	}
	return n
}

func TestPositionMatchesDefinition(t *testing.T) {
	cfg := &config.Config{Queues: []config.Queue{{Name: "q", Channels: []string{"phone", "chat"}}}}
	cfg.Agents = []config.Agent{{ID: "a", Queues: []string{"q"}, Skills: map[string]int{"x": 1}}}
	cfg.SetDefaults()
	c, err := newCore(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
	var live []interaction.ID
	a := c.agents["a"]
	for step := range 1500 {
		now = now.Add(time.Second)
		switch op := rng.IntN(10); {
		case op < 6 || len(live) == 0:
			ch := interaction.Phone
			if rng.IntN(2) == 0 {
				ch = interaction.Chat
			}
			var skills []string
			if rng.IntN(3) == 0 {
				skills = []string{"x"}
			}
			adm, err := c.offer(Offer{Channel: ch, Queue: "q", Priority: rng.IntN(3), Skills: skills, Handler: nopHandler{}}, now)
			if err != nil {
				t.Fatal(err)
			}
			live = append(live, adm.ID)
			if x := c.ixns[adm.ID]; x.state == ixnWaiting && adm.Position != bruteForcePosition(x.q, x) {
				t.Fatalf("step %d: admission position %d, want %d", step, adm.Position, bruteForcePosition(x.q, x))
			}
		case op < 8:
			i := rng.IntN(len(live))
			if x := c.ixns[live[i]]; x != nil && x.state != ixnConnected {
				if err := c.abandon(live[i], now); err != nil {
					t.Fatal(err)
				}
			}
		default:
			// Log the agent in for a moment: it takes the head, fails the
			// ring, and the interaction goes back to its place.
			if err := c.presence(a, MediaVoice, true, now); err != nil {
				t.Fatal(err)
			}
			for _, x := range c.ixns {
				if x.state == ixnRinging {
					if err := c.ringFailed(x.id, "a", RingBusy, now); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := c.presence(a, MediaVoice, false, now); err != nil {
				t.Fatal(err)
			}
		}
		if step%7 != 0 {
			continue
		}
		for _, x := range c.ixns {
			if x.state == ixnWaiting {
				if got, want := x.q.position(x), bruteForcePosition(x.q, x); got != want {
					t.Fatalf("step %d: position %d, want %d", step, got, want)
				}
			}
		}
	}
}

// BenchmarkAnnouncePosition is the cost of one position announcement with
// 10,000 chats waiting (C3/P5 run one per waiting interaction per
// announce_interval).
func BenchmarkAnnouncePosition(b *testing.B) {
	c, _, _ := benchCore(b, 10, 10000)
	q := c.queues["etax"]
	var xs []*ixn
	for _, x := range c.ixns {
		if x.state == ixnWaiting {
			xs = append(xs, x)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = q.position(xs[i%len(xs)])
		i++
	}
}
