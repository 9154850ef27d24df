package interaction_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
)

func TestEnumsRoundTrip(t *testing.T) {
	rec := interaction.Record{ID: interaction.NewID(time.Now()), Channel: interaction.ChannelUnknown,
		State: interaction.StateOpen, Reason: interaction.ReasonCallback, Disposition: interaction.OutOfScope}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back interaction.Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if back.Channel != rec.Channel || back.State != rec.State || back.Reason != rec.Reason || back.Disposition != rec.Disposition {
		t.Errorf("round trip: %+v != %+v", back, rec)
	}
	for et := interaction.EventUnknown; et <= interaction.ConfigReloaded; et++ {
		var got interaction.EventType
		b, _ := et.MarshalText()
		if err := got.UnmarshalText(b); err != nil || got != et {
			t.Errorf("event type %v: %v %v", et, got, err)
		}
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	a, b := interaction.NewID(t0), interaction.NewID(t0.Add(time.Millisecond))
	if !a.Valid() || !b.Valid() || !(a < b) {
		t.Errorf("ids %s, %s: want valid and ordered", a, b)
	}
	for _, bad := range []interaction.ID{"", "../../etc/passwd", "ABCDEFGHIJKLMNOPQRST", "0000000000000000000"} {
		if bad.Valid() {
			t.Errorf("%q is valid", bad)
		}
	}
}

func TestApplyFoldsACall(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var r interaction.Record
	for _, e := range []interaction.Event{
		{Type: interaction.Offered, At: t0, ID: "x", Channel: interaction.Phone, Queue: "etax", Data: map[string]string{"taxpayer_phone": "13800000000"}},
		{Type: interaction.RingStarted, At: t0.Add(time.Second), Agent: "1001"},
		{Type: interaction.RingFailed, At: t0.Add(21 * time.Second), Agent: "1001"},
		{Type: interaction.RingStarted, At: t0.Add(22 * time.Second), Agent: "1002"},
		{Type: interaction.Answered, At: t0.Add(25 * time.Second), Agent: "1002"},
		{Type: interaction.SurveyScore, At: t0.Add(3 * time.Minute), Data: map[string]string{"score": "5"}},
		{Type: interaction.Ended, At: t0.Add(3 * time.Minute), Reason: interaction.ReasonCompleted, Disposition: interaction.Resolved},
	} {
		r.Apply(e)
	}
	if r.State != interaction.StateEnded || r.Agent != "1002" || r.Rings != 2 || r.Score != 5 ||
		r.Wait() != 25*time.Second || r.TaxpayerPhone != "13800000000" || r.Live() {
		t.Errorf("record = %+v", r)
	}
}

func TestAcknowledgingAnUnownedMessageClaimsIt(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var r interaction.Record
	r.Apply(interaction.Event{Type: interaction.TicketCreated, At: t0, ID: "m", Channel: interaction.Message, Queue: "etax"})
	r.Apply(interaction.Event{Type: interaction.TicketAcknowledged, At: t0.Add(time.Hour), ID: "m", Agent: "1003"})
	r.Apply(interaction.Event{Type: interaction.TicketAcknowledged, At: t0.Add(2 * time.Hour), ID: "m", Agent: "1004"})
	if r.Agent != "1003" || !r.AcknowledgedAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("owner %q acknowledged %v: want 1003, the first to pick it up", r.Agent, r.AcknowledgedAt)
	}
}
