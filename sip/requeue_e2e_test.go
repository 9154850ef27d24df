package sip_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
)

// TestE2ETransferToAgent: a connected call is moved by the API to
// agent:1002. The router tells the call it is waiting again
// (NoticeRequeued) before ringing 1002; the gateway hangs up on 1001, plays
// hold music to the caller, and bridges the caller to 1002 (two baresip
// phones). The call keeps one recording, with both agents in it.
func TestE2ETransferToAgent(t *testing.T) {
	d := startDeskEdit(t, "open", func(y string) string {
		return strings.Replace(y, "agents:\n", "agents:\n  - {id: \"1002\", name: 坐席二, password: demo-1002, queues: [etax], skills: {etax: 5}}\n", 1)
	})
	d.agentAs(t, "1001", "auto")
	done := make(chan struct{})
	go func() {
		defer close(done)
		sipp(t, d, "caller.xml", "-d", "9000")
	}()
	var id interaction.ID
	waitFor(t, 10*time.Second, "the call to be connected to 1001", func() bool {
		for _, e := range d.phoneEvents(t) {
			if e.Type == interaction.Answered && e.Agent == "1001" {
				id = e.ID
				return true
			}
		}
		return false
	})
	d.agentAs(t, "1002", "auto")
	if err := d.router.Transfer(context.Background(), id, "agent:1002", "", "agent:1001"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the call to be connected to 1002", func() bool {
		for _, e := range d.phoneEvents(t) {
			if e.Type == interaction.Answered && e.Agent == "1002" {
				return true
			}
		}
		return false
	})
	// 1001 is off the call (in wrap-up, then available), its leg hung up.
	if v, err := d.router.Agent(context.Background(), "1001"); err != nil || v.State == queue.AgentBusy {
		t.Errorf("agent 1001 is %v (%v) after the transfer", v.State, err)
	}
	if !d.logged("sip agent leg closed", "agent=1001") {
		t.Error("1001's leg was not hung up")
	}
	<-done
	st := d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Agent != "1002" || rec.Reason != interaction.ReasonCompleted || st.Agent != "1002" {
		t.Fatalf("record: agent %q reason %v; call stats agent %q", rec.Agent, rec.Reason, st.Agent)
	}
	if !d.logged("sip call back in the queue", "from_agent=1001") {
		t.Error("the call did not go back to the queue (hold music) between the agents")
	}
	if st.AgentRx < 100 {
		t.Errorf("RTP %+v: the agents' voices did not reach the gateway", st)
	}
	if rec.Recording == "" {
		t.Fatal("no recording")
	}
	info := d.readWAV(t, rec.Recording)
	got := time.Duration(len(info.Samples)/info.Channels) * time.Second / 8000
	if want := rec.EndedAt.Sub(rec.AnsweredAt); info.Channels != 2 || got < want-time.Second {
		t.Errorf("recording %v long (%d channels), calls connected %v in all", got, info.Channels, want)
	}
}

// TestE2EAgentReferToAgent: agent 1001's softphone transfers the caller to
// extension 1002 with REFER (baresip "transfer 1002"); the gateway takes
// it as agent:1002, and the caller ends up talking to 1002.
func TestE2EAgentReferToAgent(t *testing.T) {
	d := startDeskEdit(t, "open", func(y string) string {
		return strings.Replace(y, "agents:\n", "agents:\n  - {id: \"1002\", name: 坐席二, password: demo-1002, queues: [etax], skills: {etax: 5}}\n", 1)
	})
	first := d.agentAs(t, "1001", "auto")
	done := make(chan struct{})
	go func() {
		defer close(done)
		sipp(t, d, "caller.xml", "-d", "6000")
	}()
	waitFor(t, 10*time.Second, "the call to be connected to 1001", func() bool {
		for _, e := range d.phoneEvents(t) {
			if e.Type == interaction.Answered && e.Agent == "1001" {
				return true
			}
		}
		return false
	})
	d.agentAs(t, "1002", "auto")
	if out, err := first.Command("transfer", "1002"); err != nil {
		t.Fatalf("transfer: %v %s", err, out)
	}
	<-done
	st := d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Agent != "1002" || st.Agent != "1002" || rec.Transfer != "agent:1002" {
		t.Fatalf("record: agent %q transfer %q; call stats agent %q", rec.Agent, rec.Transfer, st.Agent)
	}
}
