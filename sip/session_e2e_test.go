package sip_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taxline/taxline/interaction"
	"github.com/taxline/taxline/sip"
	"github.com/taxline/taxline/storage"
)

// TestE2ESessionTimers: SIP session timers (RFC 4028) against three SIPp
// trunks at once, all waiting in the queue (no agent). One asks for 60 s
// (refused with 422 and Min-SE 90), then for 90 s with the gateway as
// refresher: the gateway refreshes with UPDATE at 45 s, and answers the
// trunk's own refresh. One does not allow UPDATE: it is refreshed with a
// re-INVITE. The last asks for 90 s as refresher and never refreshes:
// the gateway hangs up at 60 s and the interaction is abandoned (the
// caller is unreachable). About a minute.
func TestE2ESessionTimers(t *testing.T) {
	d := startDeskEdit(t, "open", func(y string) string {
		// The captures stop after 7 s: keep the RTP watchdog out of it.
		return strings.Replace(y, "  survey_timeout: 5s\n", "  survey_timeout: 5s\n  rtp_timeout: 5m\n", 1)
	})
	var wg sync.WaitGroup
	start := time.Now()
	for _, sf := range []string{"session_refresh.xml", "session_reinvite.xml", "session_expire.xml"} {
		wg.Go(func() { sipp(t, d, sf, "-timeout", "120s") })
	}
	wg.Wait()
	stats := map[sip.Cause]sip.CallStats{}
	for range 3 {
		st := d.callStats(t)
		stats[st.Cause] = st
	}
	expired, ok := stats[sip.CauseSessionExpiry]
	if _, byCaller := stats[sip.CauseNone]; !ok || !byCaller || len(stats) != 2 {
		t.Fatalf("call causes %v, want one session_expired and the others ended by the caller", stats)
	}
	if took := time.Since(start); took < 58*time.Second {
		t.Errorf("the unrefreshed session ended after %v, want 60 s", took)
	}
	if !d.logged("sip session refreshed", "refresher=uas", "update=true") || !d.logged("sip session refreshed", "update=false") ||
		!d.logged("sip session refreshed by the trunk", "refresher=uac") {
		t.Error("the refreshes (ours by UPDATE and by re-INVITE, the trunk's) were not all logged")
	}
	_ = d.db.Sync(t.Context())
	rec, err := d.db.Interaction(expired.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != interaction.StateEnded || rec.Reason != interaction.ReasonAbandoned {
		t.Errorf("expired call's interaction: state %v reason %v", rec.State, rec.Reason)
	}
	if rs, _ := d.db.List(storage.Filter{Channel: interaction.Phone}); len(rs) != 3 {
		t.Errorf("%d interactions, want 3 (the 422 makes none)", len(rs))
	}
}
