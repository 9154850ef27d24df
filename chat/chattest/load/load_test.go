package main

import (
	"testing"
	"time"
)

// TestLoadSmall runs the benchmark in miniature, in process, so the
// program keeps working: every message sent arrives, both ways.
func TestLoadSmall(t *testing.T) {
	rep, err := run(options{sessions: 60, agents: 4, maxChats: 10, rate: 100, duration: time.Second,
		dialers: 8, inProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 40 || rep.Queued != 20 {
		t.Fatalf("connected %d, queued %d; want 40 and 20", rep.Connected, rep.Queued)
	}
	if rep.Lost != 0 || rep.Errors != 0 || rep.T2A.N == 0 || rep.A2T.N == 0 {
		t.Fatalf("report = %+v", rep)
	}
	t.Logf("p99 taxpayer→agent %s, agent→taxpayer %s", rep.T2A.P99, rep.A2T.P99)
}
