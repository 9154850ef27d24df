package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// SDP errors. A call control maps them to 488 Not Acceptable Here.
var (
	ErrNoAudio      = errors.New("media: no audio stream in SDP")
	ErrNoCodec      = errors.New("media: no common codec")
	ErrBadSDP       = errors.New("media: malformed SDP")
	ErrNoConnection = errors.New("media: SDP has no usable connection address")
)

// Direction is an SDP media direction attribute (RFC 3264 §5.1, §8.4): how
// hold and unhold are signalled.
type Direction uint8

// Directions.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "sendrecv"
}

// Reverse is the direction an answerer uses for an offer in direction d
// (RFC 3264 §6.1): sendonly is answered recvonly and vice versa.
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// Format is one payload format an SDP audio stream lists.
type Format struct {
	PT   uint8
	Name string // encoding name, e.g. PCMA, telephone-event
	Rate int
}

// Session is the part of an SDP body that matters for a G.711 call: the
// first audio stream.
type Session struct {
	// Addr is where to send RTP (c= and m= port). Port 0 means the stream
	// was rejected.
	Addr    netip.AddrPort
	Formats []Format
	Dir     Direction
}

// ParseSDP reads an SDP body (RFC 4566) from outside. It never panics on
// bad input; every failure wraps ErrBadSDP or one of the other errors.
func ParseSDP(body []byte) (s Session, err error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(string(body)); err != nil {
		return s, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	var md *sdp.MediaDescription
	for _, m := range d.MediaDescriptions {
		if m != nil && m.MediaName.Media == "audio" {
			md = m
			break
		}
	}
	if md == nil {
		return s, ErrNoAudio
	}
	conn := md.ConnectionInformation
	if conn == nil {
		conn = d.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return s, ErrNoConnection
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return s, fmt.Errorf("%w: %q", ErrNoConnection, conn.Address.Address)
	}
	port := md.MediaName.Port.Value
	if port < 0 || port > 65535 {
		return s, fmt.Errorf("%w: port %d", ErrBadSDP, port)
	}
	s.Addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))

	rtpmap := map[uint8]Format{}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			f, ok := parseRtpmap(a.Value)
			if ok {
				rtpmap[f.PT] = f
			}
		case "sendrecv":
			s.Dir = SendRecv
		case "sendonly":
			s.Dir = SendOnly
		case "recvonly":
			s.Dir = RecvOnly
		case "inactive":
			s.Dir = Inactive
		}
	}
	if !hasDirection(md.Attributes) {
		s.Dir = sessionDirection(d.Attributes)
	}
	// A c= address of 0.0.0.0 is the old (RFC 2543) way to put on hold.
	if ip.IsUnspecified() && s.Dir == SendRecv {
		s.Dir = SendOnly
	}
	for _, f := range md.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil {
			continue
		}
		pt := uint8(n)
		if m, ok := rtpmap[pt]; ok {
			s.Formats = append(s.Formats, m)
			continue
		}
		switch pt { // static payload types, RFC 3551 §6
		case 0:
			s.Formats = append(s.Formats, Format{PT: 0, Name: "PCMU", Rate: 8000})
		case 8:
			s.Formats = append(s.Formats, Format{PT: 8, Name: "PCMA", Rate: 8000})
		}
	}
	return s, nil
}

func hasDirection(as []sdp.Attribute) bool {
	for _, a := range as {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return true
		}
	}
	return false
}

func sessionDirection(as []sdp.Attribute) Direction {
	for _, a := range as {
		switch a.Key {
		case "sendonly":
			return SendOnly
		case "recvonly":
			return RecvOnly
		case "inactive":
			return Inactive
		}
	}
	return SendRecv
}

// parseRtpmap reads "PT name/rate[/channels]".
func parseRtpmap(v string) (Format, bool) {
	pt, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return Format{}, false
	}
	n, err := strconv.ParseUint(pt, 10, 8)
	if err != nil || n > 127 {
		return Format{}, false
	}
	parts := strings.Split(strings.TrimSpace(rest), "/")
	if len(parts) < 2 {
		return Format{}, false
	}
	rate, err := strconv.Atoi(parts[1])
	if err != nil {
		return Format{}, false
	}
	return Format{PT: uint8(n), Name: parts[0], Rate: rate}, true
}

// Codec is what one side of a call settled on.
type Codec struct {
	Law Law
	// PT is the payload type the peer uses for the law (RFC 3264 §6.1: the
	// answer keeps the offer's numbers).
	PT uint8
	// DTMF is the telephone-event payload type, or -1 if the peer has none.
	DTMF int
}

// Negotiate picks, as the answerer, the first codec of our preference
// (names such as "PCMA", "PCMU") that the offer has, and the offer's
// telephone-event at 8 kHz if any (RFC 3264 §6.1, RFC 4733 §7.1).
func Negotiate(offer Session, prefs []string) (Codec, error) {
	c := Codec{DTMF: -1}
	for _, f := range offer.Formats {
		if strings.EqualFold(f.Name, "telephone-event") && f.Rate == 8000 && c.DTMF < 0 {
			c.DTMF = int(f.PT)
		}
	}
	for _, p := range prefs {
		law := ParseLaw(p)
		for _, f := range offer.Formats {
			if strings.EqualFold(f.Name, law.String()) && f.Rate == 8000 {
				c.Law, c.PT = law, f.PT
				return c, nil
			}
		}
	}
	return c, ErrNoCodec
}

// DefaultDTMFPT is the telephone-event payload type we offer.
const DefaultDTMFPT = 101

// Description is our side of an SDP exchange.
type Description struct {
	// Addr is our RTP address (c= and m= port).
	Addr netip.AddrPort
	// Codecs we offer, in order; an answer carries exactly one.
	Codecs []Codec
	Dir    Direction
	// SessionID and Version fill o=; bump Version on every re-offer or new
	// answer in the same dialog (RFC 3264 §8).
	SessionID uint64
	Version   uint64
}

// Marshal builds the SDP body.
func (d Description) Marshal() ([]byte, error) {
	addrType := "IP4"
	if d.Addr.Addr().Is6() {
		addrType = "IP6"
	}
	ip := d.Addr.Addr().String()
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: int(d.Addr.Port())},
			Protos: []string{"RTP", "AVP"},
		},
	}
	dtmf := -1
	for _, c := range d.Codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.PT)))
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", fmt.Sprintf("%d %s/8000", c.PT, c.Law)))
		if c.DTMF >= 0 && dtmf < 0 {
			dtmf = c.DTMF
		}
	}
	if dtmf >= 0 {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(dtmf))
		md.Attributes = append(md.Attributes,
			sdp.NewAttribute("rtpmap", fmt.Sprintf("%d telephone-event/8000", dtmf)),
			sdp.NewAttribute("fmtp", fmt.Sprintf("%d 0-16", dtmf)))
	}
	md.Attributes = append(md.Attributes,
		sdp.NewAttribute("ptime", "20"),
		sdp.NewPropertyAttribute(d.Dir.String()))
	s := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "taxline", SessionID: d.SessionID, SessionVersion: d.Version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: ip,
		},
		SessionName: "taxline",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: ip},
		},
		TimeDescriptions:  []sdp.TimeDescription{{}},
		MediaDescriptions: []*sdp.MediaDescription{md},
	}
	b, err := s.Marshal()
	if err != nil {
		return nil, fmt.Errorf("media: build SDP: %w", err)
	}
	return b, nil
}

// OfferCodecs is what we offer for a preference list: each law at its
// static payload type, and telephone-event on the first.
func OfferCodecs(prefs []string) []Codec {
	var cs []Codec
	for _, p := range prefs {
		law := ParseLaw(p)
		if law == LawUnknown {
			continue
		}
		cs = append(cs, Codec{Law: law, PT: law.StaticPT(), DTMF: -1})
	}
	if len(cs) > 0 {
		cs[0].DTMF = DefaultDTMFPT
	}
	return cs
}
