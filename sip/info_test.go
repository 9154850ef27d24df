package sip

import "testing"

func TestDTMFFromInfo(t *testing.T) {
	for _, tc := range []struct {
		ct, body string
		want     byte
		ok       bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', true},
		{"application/dtmf-relay; charset=utf-8", "signal= # \nDuration=100", '#', true},
		{"Application/DTMF-Relay", "Duration=100\nSignal=3", '3', true},
		{"application/dtmf", "4", '4', true},
		{"application/dtmf", "11", 0, false},
		{"application/dtmf-relay", "Signal=55", 0, false},
		{"application/dtmf-relay", "Signal=x", 0, false},
		{"text/plain", "Signal=5", 0, false},
		{"", "", 0, false},
	} {
		got, ok := dtmfFromInfo(tc.ct, []byte(tc.body))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q %q: got %q %v, want %q %v", tc.ct, tc.body, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzDTMFInfo: SIP INFO bodies come from the caller.
func FuzzDTMFInfo(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n"))
	f.Add("application/dtmf", []byte("9"))
	f.Add("application/dtmf-relay;x=y", []byte("Signal\n=\n"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		if d, ok := dtmfFromInfo(ct, body); ok && !isDTMF(d) {
			t.Fatalf("non-DTMF digit %q from %q", d, body)
		}
	})
}
