package sip_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sip"
	"github.com/taxline/taxline/storage"
)

func withRTPTimeout(y string) string {
	return strings.Replace(y, "  survey_timeout: 5s\n", "  survey_timeout: 5s\n  rtp_timeout: 2s\n", 1)
}

// endedBySystem checks that the interaction ended through the router as
// the system's doing (not the taxpayer's or the agent's), and that its
// recording was closed whole: as long as the connected time.
func endedBySystem(t *testing.T, d *desk, cause sip.Cause) interaction.Record {
	t.Helper()
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonCompleted || rec.Agent != "1001" {
		t.Fatalf("record: reason %v agent %q", rec.Reason, rec.Agent)
	}
	evs, err := d.db.Events(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Type != interaction.Ended || last.Actor != interaction.ActorSystem || last.Data["cause"] != string(cause) {
		t.Errorf("last event %v by %q with cause %q, want ended by the system for %q", last.Type, last.Actor, last.Data["cause"], cause)
	}
	if rec.Recording == "" {
		t.Fatal("no recording")
	}
	info := d.readWAV(t, rec.Recording)
	got := time.Duration(len(info.Samples)/info.Channels) * time.Second / 8000
	if want := rec.EndedAt.Sub(rec.AnsweredAt); got < want-500*time.Millisecond || got > want+500*time.Millisecond {
		t.Errorf("recording %v long, call connected %v", got, want)
	}
	waitFor(t, 5*time.Second, "agent 1001 to leave the call", func() bool {
		v, err := d.router.Agent(context.Background(), "1001")
		return err == nil && v.State != queue.AgentBusy
	})
	return rec
}

// TestE2ECallerMediaStops: the trunk stops sending RTP (after the 7 s
// capture) without hanging up. After sip.rtp_timeout (2 s here) the gateway
// ends the interaction through the router, closes the recording, and sends
// BYE to the agent's baresip and to the trunk (which SIPp waits for).
func TestE2ECallerMediaStops(t *testing.T) {
	d := startDeskEdit(t, "open", withRTPTimeout)
	d.agent(t)
	sipp(t, d, "caller_await_bye.xml")
	st := d.callStats(t)
	if st.Cause != sip.CauseCallerNoRTP {
		t.Fatalf("cause %q, want %q", st.Cause, sip.CauseCallerNoRTP)
	}
	rec := endedBySystem(t, d, sip.CauseCallerNoRTP)
	// 7 s of audio from about the answer, then 2 s of silence.
	if c := rec.EndedAt.Sub(rec.OfferedAt); c < 7*time.Second || c > 13*time.Second {
		t.Errorf("call lasted %v after it was offered", c)
	}
}

// TestE2EAgentMediaStops: the agent's softphone dies mid-call (killed, so
// no BYE). The caller still talks; 2 s after the agent's RTP stops the
// gateway ends the interaction and hangs up on the caller.
func TestE2EAgentMediaStops(t *testing.T) {
	d := startDeskEdit(t, "open", withRTPTimeout)
	b := d.agent(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sipp(t, d, "caller_await_bye.xml")
	}()
	waitFor(t, 10*time.Second, "the call to be connected", func() bool { return d.logged("sip call connected") })
	b.Stop()
	killed := time.Now()
	<-done
	st := d.callStats(t)
	if st.Cause != sip.CauseAgentNoRTP {
		t.Fatalf("cause %q, want %q", st.Cause, sip.CauseAgentNoRTP)
	}
	if took := time.Since(killed); took > 12*time.Second {
		t.Errorf("the caller was hung up on %v after the agent died", took)
	}
	endedBySystem(t, d, sip.CauseAgentNoRTP)
}

// TestE2ENoAck: a trunk that never ACKs the 200 OK. The gateway
// retransmits it, gives up after 64*T1 (32 s) and sends BYE, which SIPp
// waits for; the call leaves nothing behind (no interaction was offered).
func TestE2ENoAck(t *testing.T) {
	d := startDesk(t, "open")
	start := time.Now()
	sipp(t, d, "caller_no_ack.xml")
	st := d.callStats(t)
	if took := time.Since(start); st.Cause != sip.CauseNoAck || took < 30*time.Second {
		t.Fatalf("cause %q after %v, want %q after 32 s", st.Cause, took, sip.CauseNoAck)
	}
	waitFor(t, 5*time.Second, "the call to be gone", func() bool { return d.gw.Calls() == 0 })
	if rs, _ := d.db.List(storage.Filter{}); len(rs) != 0 {
		t.Errorf("%d interactions left by an unacknowledged call", len(rs))
	}
}
