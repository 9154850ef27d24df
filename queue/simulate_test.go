package queue_test

import (
	"testing"
	"time"

	"github.com/taxline/taxline/config"
	"github.com/taxline/taxline/configs"
	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sla"
)

func simulateDay(t *testing.T, agents int, callsPerHour float64) sla.Figures {
	t.Helper()
	cfg, err := config.Parse("demo.yaml", configs.Demo)
	if err != nil {
		t.Fatal(err)
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, shanghai) // a Monday
	evs, err := queue.Simulate(cfg, queue.Scenario{
		Start: day, End: day.AddDate(0, 0, 1), CallsPerHour: callsPerHour, ChatsPerHour: 20,
		CallHandle: 4 * time.Minute, Patience: 2 * time.Minute, Agents: agents, Seed: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := map[interaction.ID]*interaction.Record{}
	var order []interaction.ID
	for _, e := range evs {
		if e.ID == "" {
			continue
		}
		r := recs[e.ID]
		if r == nil {
			r = &interaction.Record{}
			recs[e.ID] = r
			order = append(order, e.ID)
		}
		r.Apply(e)
	}
	var list []interaction.Record
	for _, id := range order {
		if recs[id].Live() {
			t.Errorf("%s still live after the simulation", id)
		}
		list = append(list, *recs[id])
	}
	return sla.Compute(list, sla.DefinitionsFromConfig(cfg))
}

func TestSimulateStaffingMatters(t *testing.T) {
	well := simulateDay(t, 5, 40)
	thin := simulateDay(t, 1, 40)
	t.Logf("5 agents: P2 %s P3 %s; 1 agent: P2 %s P3 %s", well.Phone.AnswerRate.Percent(), well.Phone.AnsweredWithin.Percent(), thin.Phone.AnswerRate.Percent(), thin.Phone.AnsweredWithin.Percent())
	if well.Phone.Offered < 800 || well.Phone.Offered > 1100 {
		t.Fatalf("offered %d calls in a day at 40/h, want about 960", well.Phone.Offered)
	}
	if well.Phone.AnswerRate.Value < 0.9 {
		t.Errorf("5 agents, 40 calls/h of 4 min: P2 = %.2f, want ≥ 0.9", well.Phone.AnswerRate.Value)
	}
	if thin.Phone.AnswerRate.Value >= well.Phone.AnswerRate.Value || thin.Phone.AnsweredWithin.Value >= well.Phone.AnsweredWithin.Value {
		t.Errorf("one agent did as well as five: P2 %.2f vs %.2f, P3 %.2f vs %.2f",
			thin.Phone.AnswerRate.Value, well.Phone.AnswerRate.Value, thin.Phone.AnsweredWithin.Value, well.Phone.AnsweredWithin.Value)
	}
	if again := simulateDay(t, 5, 40); again.Phone.Offered != well.Phone.Offered || again.Phone.Answered != well.Phone.Answered {
		t.Errorf("the same seed gave a different day")
	}
}
