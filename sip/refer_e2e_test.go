package sip_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/queue"
	"github.com/taxline/taxline/sip"
	"github.com/taxline/taxline/sip/siptest"
)

// sippAgent points agent 1001's phone at a SIPp UAS on a free port instead
// of a registration (SIPp cannot register and then take calls in one
// scenario), and returns that port.
func sippAgentLookup(t *testing.T) (int, func(*sip.Gateway)) {
	port := siptest.FreePort(t, false)
	return port, func(gw *sip.Gateway) {
		gw.Lookup = func(agent string) (sip.Binding, bool) {
			if agent != "1001" {
				return sip.Binding{}, false
			}
			return sip.Binding{Agent: agent, Source: "127.0.0.1:" + strconv.Itoa(port), Transport: "UDP",
				Contact: gosip.Uri{Scheme: "sip", User: agent, Host: "127.0.0.1", Port: port}}, true
		}
	}
}

// runSIPpAgent starts the SIPp UAS scenario as agent 1001 and marks the
// agent's phone present; the result arrives on the channel.
func runSIPpAgent(t *testing.T, d *desk, port int, scenario string, args ...string) <-chan siptest.SIPp {
	t.Helper()
	sf, err := filepath.Abs(filepath.Join("..", "testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan siptest.SIPp, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out <- siptest.RunSIPp(ctx, t, "", append([]string{"-sf", sf, "-p", strconv.Itoa(port), "-rtp_echo"}, args...)...)
	}()
	if err := d.router.SetPresence(context.Background(), "1001", queue.MediaVoice, true); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestE2EAgentReferReason: the agent's phone transfers the caller back to
// 12366 with REFER and an X-Taxline-Reason. A reason that is not in
// scope_reasons is refused with 400 (the call stays with the agent); a
// configured one is taken, reaches the router with the transfer, and is
// on the interaction as its scope_reason (P4).
func TestE2EAgentReferReason(t *testing.T) {
	port, before := sippAgentLookup(t)
	d := startDeskWith(t, "open", nil, before)
	agent := runSIPpAgent(t, d, port, "agent_refer.xml")
	sipp(t, d, "transfer.xml")
	if res := <-agent; res.Err != nil {
		t.Fatalf("agent UAS: %v\n%s", res.Err, res.Output)
	}
	d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	want := d.cfg.ScopeReasons[1]
	if rec.Reason != interaction.ReasonTransferred || rec.Transfer != d.cfg.SIP.Trunks[0].Transfer || rec.ScopeReason != want {
		t.Fatalf("record: reason %v transfer %q scope reason %q, want transferred to %q for %q",
			rec.Reason, rec.Transfer, rec.ScopeReason, d.cfg.SIP.Trunks[0].Transfer, want)
	}
	transfers := 0
	for _, e := range d.phoneEvents(t) {
		if e.Type == interaction.Transferred {
			transfers++
			if e.Actor != "agent:1001" || e.Data["reason"] != want {
				t.Errorf("transfer event %+v", e)
			}
		}
	}
	if transfers != 1 {
		t.Errorf("%d transfer events, want 1 (the refused REFER must not transfer)", transfers)
	}
}
