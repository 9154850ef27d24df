package sip_test

import (
	"strings"
	"testing"

	"github.com/taxline/taxline/interaction"
)

// TestE2EListenAnyMediaAddress: the gateway listens on 0.0.0.0 and
// advertises sip.media_address (127.0.0.2, so it cannot be mistaken for
// the listen IP or a default): the trunk's SIPp checks that the answer's
// SDP and Contact carry it, the agent's baresip registers to it and is
// rung from it, and RTP flows both ways on both legs through it.
func TestE2EListenAnyMediaAddress(t *testing.T) {
	d := startDeskEdit(t, "open", func(y string) string {
		y = strings.Replace(y, "  sip: 127.0.0.1:0\n", "  sip: 0.0.0.0:0\n", 1)
		return strings.Replace(y, "sip:\n  rtp_ports:", "sip:\n  media_address: 127.0.0.2\n  rtp_ports:", 1)
	})
	if got := d.gw.Addr().Addr().String(); got != "127.0.0.2" || !d.gw.ListenAddr().Addr().IsUnspecified() {
		t.Fatalf("advertised %s, listening on %v", got, d.gw.ListenAddr())
	}
	d.agent(t)
	sipp(t, d, "caller_media_address.xml", "-d", "5000")
	st := d.callStats(t)
	rec := d.ended(t, interaction.Phone)
	if rec.Reason != interaction.ReasonCompleted || rec.Agent != "1001" {
		t.Fatalf("record: reason %v agent %q", rec.Reason, rec.Agent)
	}
	if st.CallerRx < 100 || st.CallerTx < 100 || st.AgentRx < 100 || st.AgentTx < 100 {
		t.Errorf("RTP packet counts %+v: want ≥ 100 each way on each leg", st)
	}
}
