package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taxline/taxline/config"
)

// TestSIPKeys: the SIP gateway's robustness keys have their defaults and
// refuse bad values with the key's name.
func TestSIPKeys(t *testing.T) {
	c, err := config.Parse("f.yaml", []byte("sip:\n  media_address: 192.0.2.10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.MediaAddress != "192.0.2.10" || c.SIP.RTPTimeout != config.DefaultRTPTimeout || c.SIP.SessionExpires != config.DefaultSessionExpires {
		t.Errorf("media_address %q rtp_timeout %v session_expires %v", c.SIP.MediaAddress, c.SIP.RTPTimeout, c.SIP.SessionExpires)
	}
	if c.SIP.Batch() != config.DefaultRTPBatch {
		t.Errorf("rtp_batch %v, want %v", c.SIP.Batch(), config.DefaultRTPBatch)
	}
	if c, err := config.Parse("f.yaml", []byte("sip:\n  rtp_batch: 0s\n")); err != nil || c.SIP.Batch() != 0 {
		t.Errorf("rtp_batch 0s (a reader per leg): %v %v", c.SIP.Batch(), err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"sip:\n  media_address: example.org\n", "sip.media_address"},
		{"sip:\n  media_address: 0.0.0.0\n", "sip.media_address"},
		{"sip:\n  media_address: 224.0.0.1\n", "sip.media_address"},
		{"sip:\n  rtp_timeout: 10ms\n", "sip.rtp_timeout"},
		{"sip:\n  rtp_batch: 50ms\n", "sip.rtp_batch"},
		{"sip:\n  rtp_batch: -1ms\n", "sip.rtp_batch"},
		{"sip:\n  session_expires: 60s\n", "sip.session_expires"},
	} {
		_, err := config.Parse("f.yaml", []byte(tc.yaml))
		var ce *config.Error
		if !errors.As(err, &ce) || !strings.Contains(ce.Problems[0].Msg, tc.want) {
			t.Errorf("%q: err %v, want a problem with %s", tc.yaml, err, tc.want)
		}
	}
}

// TestCommitDelay: server.commit_delay maps onto the store's linger (unset
// = the store's default, 0s = none) and refuses values outside 0s–1s.
func TestCommitDelay(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want time.Duration
	}{
		{"server:\n  timezone: Asia/Shanghai\n", 0},
		{"server:\n  commit_delay: 0s\n", -1},
		{"server:\n  commit_delay: 50ms\n", 50 * time.Millisecond},
	} {
		c, err := config.Parse("f.yaml", []byte(tc.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if got := c.Server.EmitLinger(); got != tc.want {
			t.Errorf("%q: EmitLinger %v, want %v", tc.yaml, got, tc.want)
		}
	}
	for _, y := range []string{"server:\n  commit_delay: -1ms\n", "server:\n  commit_delay: 2s\n"} {
		_, err := config.Parse("f.yaml", []byte(y))
		var ce *config.Error
		if !errors.As(err, &ce) || !strings.Contains(ce.Problems[0].Msg, "server.commit_delay") {
			t.Errorf("%q: err %v, want a problem with server.commit_delay", y, err)
		}
	}
}
