package sip

import (
	"errors"
	"strconv"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

func inviteWith(hdrs ...[2]string) *gosip.Request {
	req := gosip.NewRequest(gosip.INVITE, gosip.Uri{Scheme: "sip", User: "12366", Host: "127.0.0.1"})
	for _, h := range hdrs {
		req.AppendHeader(gosip.NewHeader(h[0], h[1]))
	}
	return req
}

// TestNegotiateSession: RFC 4028 §9 as the UAS, with 30 min as ours.
func TestNegotiateSession(t *testing.T) {
	const ours = 30 * time.Minute
	sup := [2]string{"Supported", "replaces, timer"}
	for _, tc := range []struct {
		name      string
		hdrs      [][2]string
		interval  time.Duration
		refresher string
		require   bool
		update    bool
		err       error
	}{
		{"none: ours, we refresh", nil, ours, "uas", false, false, nil},
		{"trunk asks 90 s, it refreshes", [][2]string{{"Session-Expires", "90;refresher=uac"}, sup}, 90 * time.Second, "uac", true, false, nil},
		{"compact form, we refresh", [][2]string{{"x", "120;refresher=uas"}, {"k", "timer"}, {"Allow", "INVITE, ACK, UPDATE"}}, 2 * time.Minute, "uas", true, true, nil},
		{"longer than ours is lowered", [][2]string{{"Session-Expires", "7200"}, sup}, ours, "uac", true, false, nil},
		{"not below the trunk's Min-SE", [][2]string{{"Session-Expires", "7200"}, {"Min-SE", "3600"}, sup}, time.Hour, "uac", true, false, nil},
		{"uac without timer support: we refresh", [][2]string{{"Session-Expires", "600;refresher=uac"}}, 10 * time.Minute, "uas", false, false, nil},
		{"under Min-SE: 422", [][2]string{{"Session-Expires", "60"}, sup}, 0, "", false, false, errIntervalTooSmall},
		{"malformed: as if absent", [][2]string{{"Session-Expires", "soon"}}, ours, "uas", false, false, nil},
	} {
		s, err := negotiateSession(inviteWith(tc.hdrs...), ours)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if s.interval != tc.interval || s.refresher != tc.refresher || s.supported != tc.require || s.update != tc.update {
			t.Errorf("%s: got %+v", tc.name, s)
		}
		hs := s.headers()
		if len(hs) == 0 || hs[0].Value() != strconv.Itoa(int(tc.interval/time.Second))+";refresher="+tc.refresher {
			t.Errorf("%s: headers %v", tc.name, hs)
		}
	}
	// When it fires: half the interval when we refresh; otherwise the
	// interval less min(32 s, a third).
	if d := (sessionTimer{interval: 90 * time.Second, refresher: "uas"}).next(); d != 45*time.Second {
		t.Errorf("uas next %v", d)
	}
	if d := (sessionTimer{interval: 90 * time.Second, refresher: "uac"}).next(); d != 60*time.Second {
		t.Errorf("uac next %v", d)
	}
	if d := (sessionTimer{interval: 30 * time.Minute, refresher: "uac"}).next(); d != 30*time.Minute-32*time.Second {
		t.Errorf("uac next %v", d)
	}
}
