package sip

import (
	"net/netip"
	"testing"
)

// TestAdvertised: the address put in SDP and headers is media_address if
// set, else the listen IP, and never an unspecified one.
func TestAdvertised(t *testing.T) {
	any4, any6 := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	for _, tc := range []struct {
		listen netip.Addr
		media  string
		want   string // "" = any usable address of the listen family
	}{
		{netip.MustParseAddr("127.0.0.1"), "", "127.0.0.1"},
		{netip.MustParseAddr("10.1.2.3"), "203.0.113.7", "203.0.113.7"},
		{any4, "127.0.0.2", "127.0.0.2"},
		{any4, "", ""},
		{any6, "", ""},
	} {
		got, err := advertised(tc.listen, tc.media)
		if err != nil {
			t.Fatalf("%v %q: %v", tc.listen, tc.media, err)
		}
		if tc.want != "" && got.String() != tc.want {
			t.Errorf("%v %q: got %v, want %s", tc.listen, tc.media, got, tc.want)
		}
		if !got.IsValid() || got.IsUnspecified() || got.Is4() != tc.listen.Is4() && tc.media == "" {
			t.Errorf("%v %q: got %v", tc.listen, tc.media, got)
		}
	}
	if _, err := advertised(any4, "0.0.0.0"); err == nil {
		t.Error("an unspecified media_address was taken")
	}
}
