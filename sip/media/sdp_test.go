package media

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

const sippOffer = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 6000 RTP/AVP 0 8 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n"

func TestNegotiate(t *testing.T) {
	s, err := ParseSDP([]byte(sippOffer))
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != netip.MustParseAddrPort("127.0.0.1:6000") || s.Dir != SendRecv || len(s.Formats) != 3 {
		t.Fatalf("parsed %+v", s)
	}
	c, err := Negotiate(s, []string{"PCMA", "PCMU"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Law != ALaw || c.PT != 8 || c.DTMF != 96 {
		t.Fatalf("negotiated %+v", c)
	}
	c, _ = Negotiate(s, []string{"PCMU"})
	if c.Law != ULaw || c.PT != 0 {
		t.Fatalf("negotiated %+v", c)
	}
	s.Formats = s.Formats[2:]
	if _, err := Negotiate(s, []string{"PCMA"}); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("got %v, want ErrNoCodec", err)
	}
}

func TestDirections(t *testing.T) {
	for _, tc := range []struct {
		body string
		want Direction
	}{
		{strings.Replace(sippOffer, "t=0 0\r\n", "t=0 0\r\na=sendonly\r\n", 1), SendOnly},
		{sippOffer + "a=inactive\r\n", Inactive},
		{sippOffer + "a=recvonly\r\n", RecvOnly},
		{strings.Replace(sippOffer, "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1), SendOnly},
	} {
		s, err := ParseSDP([]byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if s.Dir != tc.want {
			t.Errorf("direction %v, want %v", s.Dir, tc.want)
		}
	}
	if SendOnly.Reverse() != RecvOnly || Inactive.Reverse() != Inactive {
		t.Error("Reverse")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	d := Description{
		Addr:   netip.MustParseAddrPort("127.0.0.1:20002"),
		Codecs: OfferCodecs([]string{"PCMA", "PCMU"}),
		Dir:    SendOnly, SessionID: 7, Version: 2,
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSDP(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if s.Addr != d.Addr || s.Dir != SendOnly || len(s.Formats) != 3 {
		t.Fatalf("round trip %+v\n%s", s, b)
	}
	c, err := Negotiate(s, []string{"PCMU"})
	if err != nil || c.PT != 0 || c.DTMF != DefaultDTMFPT {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestParseSDPBad(t *testing.T) {
	for _, b := range []string{"", "garbage", "v=0\r\n", "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=video 1 RTP/AVP 96\r\n",
		"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"} {
		if _, err := ParseSDP([]byte(b)); err == nil {
			t.Errorf("%q: no error", b)
		}
	}
}

func FuzzParseSDP(f *testing.F) {
	f.Add([]byte(sippOffer))
	f.Add([]byte(sippOffer + "a=sendonly\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSDP(b)
		if err != nil {
			return
		}
		if c, err := Negotiate(s, []string{"PCMA", "PCMU"}); err == nil && c.Law == LawUnknown {
			t.Fatalf("negotiated unknown law from %q", b)
		}
	})
}
